"""`relance serve` bounds the request line and headers (RELANCE_HTTP_MAX_HEADER_BYTES)."""

import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.smtp_sink import free_port
from tests.test_end_to_end import RELANCE, relance_env, stop, tail, wait_for

pytestmark = pytest.mark.slow

LIMIT = 8192


@dataclass
class Served:
    port: int
    log: Path
    http: str

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(params=["httptools", "h11"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    """`relance serve` on the out-of-the-box settings (SQLite, generated key), small limit."""
    port = free_port()
    log = tmp_path / "serve.log"
    env = relance_env(http_max_header_bytes=str(LIMIT), scheduler="off")
    command = [*RELANCE, "serve", "--port", str(port), "--http", request.param]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT
        )
    served = Served(port, log, request.param)
    try:

        def healthy() -> bool:
            if process.poll() is not None:
                pytest.fail(f"relance serve exited with {process.returncode}:\n{tail(log)}")
            try:
                return httpx.get(f"{served.base_url}/healthz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(healthy, "relance serve to answer /healthz", timeout=60)
        yield served
    finally:
        stop(process)


def raw_request(port: int, headers: bytes, timeout: float = 15.0) -> tuple[bytes, float]:
    """Send a GET with `headers` on a new connection; what came back (b"" if reset) and when."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        received = b""
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: relance.test\r\n" + headers + b"\r\n")
            while chunk := sock.recv(65536):  # until the server closes
                received += chunk
        except (ConnectionResetError, BrokenPipeError):
            pass  # closed while we were still sending: refused just as well
    return received, time.monotonic() - started


def endless_header_refused_after(port: int) -> int:
    """Bytes of one header sent before the server closed the connection (up to 64 MiB)."""
    piece = b"a" * 65536
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: relance.test\r\nx-pad: ")
        try:
            while sent < 64 * 1024 * 1024:
                sock.sendall(piece)
                sent += len(piece)
        except (ConnectionResetError, BrokenPipeError):
            pass
    return sent


def pad(size: int) -> dict[str, str]:
    return {"x-pad": "a" * size}


def test_headers_are_bounded_and_the_server_keeps_serving(served: Served) -> None:
    with httpx.Client(base_url=served.base_url, timeout=10) as client:
        # Just under the limit, many times on one kept-alive connection: the count is per
        # request, never per connection.
        for _ in range(20):
            assert client.get("/healthz", headers=pad(LIMIT - 1024)).status_code == 200
        # A body is not a header: 256 KiB of it reach the application (405 on /healthz).
        assert client.post("/healthz", content=b"x" * 262144).status_code == 405

    # 2 MiB in one header: refused at once, not buffered (431, or closed while sending).
    received, elapsed = raw_request(served.port, b"x-pad: " + b"a" * 2 * 1024 * 1024 + b"\r\n")
    expected = b"431" if served.http == "httptools" else b"400"
    assert received == b"" or received.startswith(b"HTTP/1.1 " + expected), received[:200]
    assert elapsed < 10, f"took {elapsed:.1f} s"

    # A header that never ends: the server stops reading it (the kernel's socket buffers
    # take a few MiB more), instead of buffering all it is sent.
    assert endless_header_refused_after(served.port) < 32 * 1024 * 1024

    # And then a normal request on a new connection still works.
    assert httpx.get(f"{served.base_url}/healthz", timeout=10).status_code == 200
    if served.http == "httptools":
        assert "answered 431" in served.log.read_text(errors="replace"), tail(served.log)


def read_response(sock: socket.socket) -> bytes:
    """One whole response (head and content-length body) from a kept-alive connection."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


# h11 bounds what it buffers while a request is incomplete, not a request that arrives whole.
@pytest.mark.parametrize("served", ["httptools"], indirect=True)
def test_just_over_the_limit_is_431_with_a_problem(served: Served) -> None:
    many = b"".join(b"x-h%d: %s\r\n" % (i, b"b" * 100) for i in range(90))  # ~10 KiB
    for headers in (b"x-pad: " + b"a" * (LIMIT + 16) + b"\r\n", many):
        received, _ = raw_request(served.port, headers)
        head, _, body = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 431 Request Header Fields Too Large"), received[:200]
        assert b"content-type: application/problem+json" in head
        assert b"connection: close" in head
        assert b'"status": 431' in body

    # A second request over the limit on a kept-alive connection: the first is served.
    with socket.create_connection(("127.0.0.1", served.port), timeout=15) as sock:
        small = b"GET /healthz HTTP/1.1\r\nhost: relance.test\r\n\r\n"
        sock.sendall(small)
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        sock.sendall(small[:-2] + b"x-pad: " + b"a" * (LIMIT + 16) + b"\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 431")
