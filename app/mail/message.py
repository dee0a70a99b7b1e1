"""A real MIME message: text and HTML alternatives, UTF-8, Message-ID, Date, From the shop.

Built with the `compat32` MIME classes and flattened once: the modern `EmailMessage` API
re-parses every header through its registry, which made message building cost more than
the SMTP conversation itself (bench/dispatch.py profile).
"""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import Compat32, EmailPolicy
from email.utils import format_datetime, formataddr

from app.mail.templates import Rendered

# A `List-Unsubscribe` URL stays one token on one line. Left to the policies, compat32 would
# fold it onto a continuation line, and the modern folder would turn a long one into RFC 2047
# encoded words, which no mailbox provider reads as a URL.
_UNFOLDED = frozenset({"list-unsubscribe"})


class _Ascii(Compat32):
    def fold_binary(self, name: str, value: str) -> bytes:
        if name.lower() in _UNFOLDED:
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


class _Utf8(EmailPolicy):
    def fold_binary(self, name: str, value: str) -> bytes:
        if name.lower() in _UNFOLDED:
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


_ASCII = _Ascii()
_UTF8 = _Utf8(linesep="\r\n", utf8=True)  # what email.policy.SMTPUTF8 is


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
    unsubscribe_url: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Outgoing:
    """The message; with `unsubscribe_url`, the RFC 2369 and RFC 8058 one-click headers.

    `headers` are added as given (ASCII names and values, such as `X-Relance-Test`)."""
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
    if unsubscribe_url:
        # Both always, whatever the URL's scheme: mailbox providers show their own unsubscribe
        # button and POST `List-Unsubscribe=One-Click` to the URL (RFC 8058).
        msg["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.attach(MIMEText(rendered.text, "plain", "utf-8"))
    msg.attach(MIMEText(rendered.html, "html", "utf-8"))
    # An internationalised recipient is written as UTF-8 (RFC 6532), for an SMTPUTF8 server;
    # compat32 would turn it into an encoded word, which is not an address.
    return Outgoing(message_id, msg.as_bytes(policy=_ASCII if to.isascii() else _UTF8))
