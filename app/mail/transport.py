"""Transports: SMTP (plain, STARTTLS, implicit TLS, auth) and the `file:` outbox.

SMTP failures are classified so the dispatcher knows what to do: retry later, fail this one
recipient, or stop the shop's sending until someone fixes the cause.
"""

import asyncio
import os
import re
import ssl
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from app.mail.message import Outgoing


class SendError(Exception):
    """Base of the classified failures; `str()` is safe to store and show (no secrets)."""


class TransientError(SendError):
    """Try again later: 4xx answers, connection and timeout errors."""


class Throttled(TransientError):
    """The relay asks us to slow down: 421 (too many connections, try later) or a 4.x.x answer
    about rates. Not the message's fault: it goes back in line without spending an attempt."""


class RecipientRejected(SendError):
    """The recipient does not exist or is refused for good (5.1.x, 550 at RCPT).

    `code` is the server's reply code; None when our client refused the address itself.
    """

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class PermanentError(SendError):
    """Authentication, sender or policy rejection: nothing will pass until it is fixed."""


class Utf8Unsupported(SendError):
    """An internationalised address, and a server that does not offer SMTPUTF8 (RFC 6531)."""


class Transport(Protocol):
    async def ready(self) -> None:
        """Open the connection now if needed (so a rate limit paces messages, not connects)."""

    async def send(self, message: Outgoing, sender: str, recipient: str) -> None: ...

    async def close(self) -> None: ...


class FileTransport:
    """Writes each message as an `.eml` file (the embedded default)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def ready(self) -> None:
        return None

    async def send(self, message: Outgoing, sender: str, recipient: str) -> None:
        await asyncio.to_thread(self._write, message)

    def _write(self, message: Outgoing) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        stem = re.sub(r"[^A-Za-z0-9.-]+", "_", message.message_id.strip("<>"))
        final = self.directory / f"{stem}.eml"
        partial = self.directory / f".{stem}.tmp"
        partial.write_bytes(message.data)
        os.replace(partial, final)  # readers never see half a message

    async def close(self) -> None:
        return None


class SmtpTransport:
    """One SMTP connection, opened on first use and reused until an error or `close()`."""

    def __init__(self, url: str, timeout: float) -> None:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        self.hostname = parts.hostname or "localhost"
        self.use_tls = parts.scheme == "smtps"
        self.start_tls = parts.scheme == "smtp+starttls"
        self.port = parts.port or (465 if self.use_tls else 587 if self.start_tls else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.timeout = timeout
        self.verify = query.get("verify", ["true"])[0].lower() not in ("0", "false", "no")
        self._client: aiosmtplib.SMTP | None = None

    async def _connect(self) -> aiosmtplib.SMTP:
        context = ssl.create_default_context()
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        client = aiosmtplib.SMTP(
            hostname=self.hostname,
            port=self.port,
            use_tls=self.use_tls,
            start_tls=self.start_tls,
            tls_context=context if (self.use_tls or self.start_tls) else None,
            timeout=self.timeout,
        )
        await client.connect()
        if self.username is not None:
            await client.login(self.username, self.password or "")
        return client

    async def ready(self) -> None:
        try:
            await self._connected()
        except aiosmtplib.SMTPException as exc:
            await self.close()
            raise classify(exc) from exc
        except (OSError, TimeoutError) as exc:
            await self.close()
            raise TransientError(f"connection failed: {type(exc).__name__}") from exc

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._client is None or not self._client.is_connected:
            self._client = await self._connect()
        return self._client

    async def send(self, message: Outgoing, sender: str, recipient: str) -> None:
        try:
            self._client = await self._connected()
            options = []
            if not (sender.isascii() and recipient.isascii()):
                if self._client.is_ehlo_or_helo_needed:
                    await self._client.ehlo()
                if not self._client.supports_extension("smtputf8"):
                    raise Utf8Unsupported("the SMTP server does not offer SMTPUTF8")
                options.append("SMTPUTF8")
            await self._client.sendmail(sender, [recipient], message.data, mail_options=options)
        except ValueError as exc:
            # aiosmtplib refuses an address it cannot put on a command line; the conversation
            # was not started, so the connection stays usable.
            raise RecipientRejected(f"address refused by the SMTP client: {exc}") from exc
        except aiosmtplib.SMTPException as exc:
            await self.close()
            raise classify(exc) from exc
        except (OSError, TimeoutError) as exc:
            await self.close()
            raise TransientError(f"connection failed: {type(exc).__name__}") from exc

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            if client.is_connected:
                await client.quit()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            client.close()


_RECIPIENT_CODES = {550, 551, 553}
# What relays say when they throttle (SES "454 Throttling failure: Maximum sending rate
# exceeded", Gmail "4.7.28 ... unusual rate", Postfix "452 4.3.1 ... too many ...").
_SLOW_DOWN = re.compile(r"throttl|\brate\b|too many|slow down", re.IGNORECASE)


def classify(exc: aiosmtplib.SMTPException) -> SendError:
    """Map an aiosmtplib exception to what the dispatcher should do about it."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        exc = exc.recipients[0]
    code = getattr(exc, "code", None)
    text = f"{code} {getattr(exc, 'message', exc)}" if code else str(exc) or type(exc).__name__
    text = text[:500]
    if code == 421 or (isinstance(code, int) and 400 <= code < 500 and _SLOW_DOWN.search(text)):
        return Throttled(text)
    if isinstance(
        exc,
        aiosmtplib.SMTPConnectError
        | aiosmtplib.SMTPServerDisconnected
        | aiosmtplib.SMTPTimeoutError,
    ):
        return TransientError(text)
    if isinstance(code, int) and 400 <= code < 500:
        return TransientError(text)
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused):
        message = str(getattr(exc, "message", ""))
        if code in _RECIPIENT_CODES or message.startswith("5.1."):
            return RecipientRejected(text, code if isinstance(code, int) else None)
    return PermanentError(text)


def transport_from_url(url: str, timeout: float) -> Transport:
    """`smtp://`, `smtp+starttls://`, `smtps://` or `file:PATH` (see the README)."""
    if url.startswith("file:"):
        path = url.removeprefix("file:")
        if path.startswith("//"):
            path = urlsplit(url).path
        return FileTransport(Path(unquote(path)))
    scheme = urlsplit(url).scheme
    if scheme in ("smtp", "smtp+starttls", "smtps"):
        return SmtpTransport(url, timeout)
    raise ValueError(f"RELANCE_MAIL_URL: unsupported scheme {scheme!r}")
