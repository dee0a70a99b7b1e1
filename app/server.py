"""`relance serve`'s HTTP server: uvicorn, with the request line and headers bounded in size.

uvicorn's httptools path has no header limit of its own: httptools buffers a header value
until its end, so a 100 MiB header costs 100 MiB (or more) of memory before the application
sees anything. `HeaderLimitedProtocol` counts the bytes and answers 431 past the limit.
"""

import contextlib
import gc
import json
import logging
import socket
import sys
from typing import Any, ClassVar, Literal

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.config import Settings

log = logging.getLogger("relance.server")

PROBLEM_TYPE = "https://relance.dev/problems/request-header-fields-too-large"


class HeadersTooLarge(Exception):
    """Raised from a parser callback to stop parsing a request whose headers are too large."""


class HeaderLimitedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, answering 431 to oversized request headers.

    Two counts: while a request's headers are incomplete, every byte received for it (this
    bounds what httptools buffers, whatever the headers' shape); when they are complete, the
    parsed request target and header fields, since headers that arrive whole in one read are
    never seen incomplete. Under pipelining the first count may include the tail of the
    previous request: it errs on the safe side.
    """

    max_header_bytes: ClassVar[int] = 65536
    # Bytes received for the current request while its headers are incomplete; -1 after.
    _header_bytes = -1
    _chunk_bytes = 0
    _too_large = False

    def data_received(self, data: bytes) -> None:
        self._chunk_bytes = len(data)
        super().data_received(data)
        if self._header_bytes >= 0:
            self._header_bytes += len(data)
            if self._header_bytes > self.max_header_bytes and not self.transport.is_closing():
                self._reject()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0

    def on_headers_complete(self) -> None:
        # What this request has received so far bounds its headers: count them exactly only
        # when that bound is past the limit (rarely), so a usual request pays two additions.
        if (
            self._header_bytes + self._chunk_bytes > self.max_header_bytes
            and len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)
            > self.max_header_bytes
        ):
            # httptools turns this into an HttpParserError: uvicorn then calls
            # send_400_response, which answers 431 instead.
            self._too_large = True
            raise HeadersTooLarge
        self._header_bytes = -1
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        if self._too_large:
            self._reject()
        else:
            super().send_400_response(msg)

    def _reject(self) -> None:
        log.warning(
            "request headers over %d bytes (RELANCE_HTTP_MAX_HEADER_BYTES): answered 431",
            self.max_header_bytes,
        )
        body = json.dumps(
            {
                "type": PROBLEM_TYPE,
                "title": "Request header fields too large",
                "status": 431,
                "detail": f"The request line and headers exceed {self.max_header_bytes} bytes.",
            }
        ).encode()
        head = [b"HTTP/1.1 431 Request Header Fields Too Large\r\n"]
        for name, value in self.server_state.default_headers:
            head.append(name + b": " + value + b"\r\n")
        head.append(b"content-type: application/problem+json\r\n")
        head.append(b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body))
        self.transport.write(b"".join(head) + body)
        self.transport.close()


def http_protocol(max_header_bytes: int) -> type[HeaderLimitedProtocol]:
    """The protocol class `relance serve` gives uvicorn, bounded to `max_header_bytes`."""

    class Limited(HeaderLimitedProtocol):
        pass

    Limited.max_header_bytes = max_header_bytes
    return Limited


def run(
    app: Any, settings: Settings, host: str, port: int, http: Literal["httptools", "h11"]
) -> None:
    """Serve `app` until SIGINT/SIGTERM, headers bounded by RELANCE_HTTP_MAX_HEADER_BYTES.

    h11 (pure Python, slower) has a bound of its own: past it uvicorn answers 400.
    """
    limit = settings.http_max_header_bytes
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        http=http_protocol(limit) if http == "httptools" else "h11",
        h11_max_incomplete_event_size=limit,
    )
    server = FrozenAfterStartup(config)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:  # as uvicorn.run: a start-up that failed exits non-zero
        sys.exit(STARTUP_FAILURE)


class FrozenAfterStartup(uvicorn.Server):
    """uvicorn's server, with what start-up built moved out of the garbage collector's way.

    The routes, schemas, compiled statements and settings built at start-up (~190,000 objects)
    live as long as the process; every full collection walked them all: 80-200 ms during
    which no request moved, the largest part of the webhook inbox's p99 (bench.ingest).
    `gc.freeze()` puts them in a permanent generation that collections skip; objects made
    later are collected as before.
    """

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)  # runs the app's lifespan start-up first
        gc.collect()
        gc.freeze()
