"""A real MIME message: text and HTML alternatives, UTF-8, Message-ID, Date, From the shop."""

from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from app.mail.templates import Rendered


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
) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = rendered.subject
    msg["From"] = Address(display_name=from_name or "", addr_spec=from_email)
    msg["To"] = to
    if reply_to:
        msg["Reply-To"] = reply_to
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    # Tells auto-responders (out-of-office) not to answer a machine-sent message.
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(rendered.text, charset="utf-8")
    msg.add_alternative(rendered.html, subtype="html", charset="utf-8")
    # After the body: set_content() drops every Content-* header set before it.
    msg["Content-Language"] = language
    return msg
