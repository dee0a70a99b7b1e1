"""A real MIME message: text and HTML alternatives, UTF-8, Message-ID, Date, From the shop.

Built with the `compat32` MIME classes and flattened once: the modern `EmailMessage` API
re-parses every header through its registry, which made message building cost more than
the SMTP conversation itself (bench/dispatch.py profile).
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import SMTPUTF8
from email.utils import format_datetime, formataddr

from app.mail.templates import Rendered


@dataclass(frozen=True)
class Outgoing:
    """A message ready for any transport: its Message-ID and its bytes."""

    message_id: str
    data: bytes


def _subject(value: str) -> str:
    # RFC 2047 encoded words, folded at 76 characters; what a Header would write on flattening.
    if value.isascii():
        return value
    return Header(value, "utf-8", header_name="Subject").encode().lstrip()


def build(
    *,
    rendered: Rendered,
    to: str,
    from_email: str,
    from_name: str | None,
    reply_to: str | None,
    message_id: str,
    date: datetime,
    language: str,
) -> Outgoing:
    # An explicit boundary spares the generator its search of the whole text for a free one;
    # "=_" never occurs in base64-encoded parts.
    msg = MIMEMultipart("alternative", boundary=f"=_relance_{uuid.uuid4().hex}")
    msg["Subject"] = _subject(rendered.subject)
    msg["From"] = formataddr((from_name or "", from_email), charset="utf-8")
    msg["To"] = to
    if reply_to:
        msg["Reply-To"] = reply_to
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    msg["Content-Language"] = language
    # Tells auto-responders (out-of-office) not to answer a machine-sent message.
    msg["Auto-Submitted"] = "auto-generated"
    msg.attach(MIMEText(rendered.text, "plain", "utf-8"))
    msg.attach(MIMEText(rendered.html, "html", "utf-8"))
    # An internationalised recipient is written as UTF-8 (RFC 6532), for an SMTPUTF8 server;
    # compat32 would turn it into an encoded word, which is not an address.
    return Outgoing(message_id, msg.as_bytes() if to.isascii() else msg.as_bytes(policy=SMTPUTF8))
