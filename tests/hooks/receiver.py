"""A real HTTP receiver for outgoing webhooks, on a free loopback port, in a thread."""

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    path: str = "/hook"

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    def verify(self, secret: str) -> dict[str, Any]:
        """Verified by the reference package: signature and timestamp tolerance."""
        verified: dict[str, Any] = Webhook(secret).verify(self.body, self.headers)
        return verified

    def signed_by(self, secret: str) -> bool:
        """Whether one of the signatures is `secret`'s, by the reference package, whatever
        the timestamp (the job may run on a pinned clock days ahead)."""
        moment = datetime.fromtimestamp(int(self.headers["webhook-timestamp"]), UTC)
        expected = Webhook(secret).sign(self.headers["webhook-id"], moment, self.body.decode())
        return expected in self.headers["webhook-signature"].split(" ")


@dataclass
class Receiver:
    port: int
    received: list[Received] = field(default_factory=list)
    status: int = 204  # what it answers; set to 500 to make it fail

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    @property
    def localhost_url(self) -> str:
        return f"http://localhost:{self.port}/hook"

    def types(self) -> list[str]:
        return [r.event["type"] for r in self.received]


@contextmanager
def receiver() -> Iterator[Receiver]:
    state = Receiver(0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            status = state.status
            if 200 <= status < 300:
                headers = {k.lower(): v for k, v in self.headers.items()}
                state.received.append(Received(headers, body, self.path))
            self.send_response(status)
            payload = b"" if status == 204 else b"nope " * 200
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
