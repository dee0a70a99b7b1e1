"""Bounds applied where input is parsed: ids, dates, e-mail addresses, single-line text.

Whatever passes these checks fits both databases' columns and every later computation (a
due time, a header), so one hostile value is refused with a 422 naming its field instead of
failing later for everyone.
"""

import re
import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, Field

INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1

Int64 = Annotated[int, Field(ge=-INT64_MAX - 1, le=INT64_MAX)]
PositiveId = Annotated[int, Field(gt=0, le=INT64_MAX)]
# Order-state ids are stored in 32-bit columns.
StateId = Annotated[int, Field(ge=0, le=INT32_MAX)]

# Dates a shop can really send; far enough from year 1 and 9999 that adding a delay, a
# reminder or a time-zone offset can never overflow.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def check_moment(value: datetime) -> datetime:
    """A datetime between 1970 and 2200 (naive ones are compared as if UTC)."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    if not EARLIEST <= aware < LATEST:
        raise ValueError("must be between 1970-01-01 and 2199-12-31")
    return value


Moment = Annotated[datetime, AfterValidator(check_moment)]

# RFC 5321 limits: 64 octets of local part, 254 for the whole path.
MAX_EMAIL = 254
MAX_LOCAL = 64
# RFC 5322 atext, plus any non-ASCII letter (RFC 6531, sent with SMTPUTF8). No quoted local
# parts, no comments, no address lists: nothing that could add a recipient or a header.
_ATOM = r"(?:[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]|[^\x00-\x7f])+"
_LABEL = r"(?:[A-Za-z0-9]|[^\x00-\x7f])(?:[A-Za-z0-9-]|[^\x00-\x7f])*"
_EMAIL = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})+")


def _unsafe_character(value: str) -> bool:
    # Control, format, separator (space-like) and unassigned code points.
    return any(unicodedata.category(c)[0] in "CZ" for c in value)


def email_address(value: str) -> str:
    """One mailbox `local@domain`, or ValueError saying what is wrong."""
    if len(value) > MAX_EMAIL:
        raise ValueError(f"an e-mail address is at most {MAX_EMAIL} characters")
    if not _EMAIL.fullmatch(value) or _unsafe_character(value):
        raise ValueError("not an e-mail address")
    if len(value.rpartition("@")[0].encode()) > MAX_LOCAL:
        raise ValueError(f"the part before @ is at most {MAX_LOCAL} bytes")
    return value


def ascii_email_address(value: str) -> str:
    """An address for envelope senders and headers we write: ASCII only."""
    if not value.isascii():
        raise ValueError("must be ASCII (write the domain in its xn-- form)")
    return email_address(value)


def single_line(value: str) -> str:
    """Text that goes into a header or a one-line field: no control characters."""
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in value):
        raise ValueError("must be one line without control characters")
    return value


def no_nul(value: Any) -> Any:
    """Refuse NUL, which PostgreSQL text columns cannot store."""
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


EmailAddress = Annotated[str, AfterValidator(email_address)]
SenderAddress = Annotated[str, AfterValidator(ascii_email_address)]
SingleLine = Annotated[str, AfterValidator(single_line)]
