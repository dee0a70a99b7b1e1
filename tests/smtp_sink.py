"""A real SMTP server (aiosmtpd) that keeps what it receives, and can be told to refuse."""

import email
import email.policy
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SinkHandler:
    """Records messages. `rcpt_reply` / `data_reply` make it answer with an error instead."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    rcpt_reply: str | None = None
    data_reply: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply:
            return self.data_reply
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.messages.append(message)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"


class _AuthController(Controller):
    def __init__(self, handler: SinkHandler, port: int, credentials: tuple[str, str] | None):
        self.credentials = credentials
        super().__init__(
            handler,
            hostname="127.0.0.1",
            port=port,
            authenticator=self._authenticate if credentials else None,
            auth_require_tls=False,
            auth_required=credentials is not None,
        )

    def _authenticate(
        self, server: SMTPServer, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and (data.login.decode(), data.password.decode()) == self.credentials
        )
        return AuthResult(success=ok, handled=False)


@contextmanager
def smtp_sink(credentials: tuple[str, str] | None = None) -> Iterator[tuple[SinkHandler, int]]:
    """Run a sink on a free loopback port; yields the handler and the port."""
    handler = SinkHandler()
    port = free_port()
    controller = _AuthController(handler, port, credentials)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()
