"""Posting one message to an endpoint: resolve, refuse forbidden addresses, POST with httpx.

The host is resolved here and the connection goes to the address that was checked (the URL's
host is kept for the Host header and TLS), so a name that changes its answer between the
check and the connect (DNS rebinding) still cannot reach a private address.
"""

import asyncio
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from app.hooks.addresses import first_allowed

RESOLVE_TIMEOUT = 3.0
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
TOTAL = 30.0  # seconds for a whole attempt, however slowly a server drips (lease: 120 s)
EXCERPT = 200  # characters of a refusal's body kept for the delivery log


class Refused(Exception):
    """The URL may not be reached (it resolves to nothing, or to a forbidden address)."""


async def resolve(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to; an IP address resolves to itself."""
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT
        )
    except (OSError, TimeoutError, UnicodeError):
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def checked_address(url: str, allow_private: bool) -> str:
    """The address to connect to for `url`, or `Refused` saying why there is none."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address, why = first_allowed(await resolve(host, port), allow_private)
    if address is None:
        raise Refused(f"{host} {why}")
    return address


@dataclass(frozen=True)
class Answer:
    """What one POST gave: a status code, or an error; how long it took."""

    status_code: int | None
    duration_ms: int
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


async def post(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], body: bytes, allow_private: bool
) -> Answer:
    """POST once; never follows a redirect (a 3xx is a failure), reads at most an excerpt."""
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        async with asyncio.timeout(TOTAL):
            return await _post(client, url, headers, body, allow_private, elapsed)
    except TimeoutError:
        return Answer(None, elapsed(), f"no complete answer within {TOTAL:.0f} s")


async def _post(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], body: bytes,
    allow_private: bool, elapsed: Callable[[], int],
) -> Answer:  # fmt: skip
    try:
        address = await checked_address(url, allow_private)
        target = httpx.URL(url)
        request = client.build_request(
            "POST",
            target.copy_with(host=address),
            headers={**headers, "host": target.netloc.decode("ascii")},
            content=body,
            # TLS checks the certificate against the URL's host, not the address.
            extensions={"sni_hostname": target.host} if target.scheme == "https" else {},
        )
        response = await client.send(request, stream=True)
        try:
            excerpt = None
            if not 200 <= response.status_code < 300:
                excerpt = await _excerpt(response)
        finally:
            await response.aclose()
    except Refused as exc:
        return Answer(None, elapsed(), f"refused: {exc}"[:300])
    except httpx.HTTPError as exc:
        return Answer(None, elapsed(), f"{type(exc).__name__}: {exc}"[:300])
    return Answer(response.status_code, elapsed(), excerpt)


async def _excerpt(response: httpx.Response) -> str:
    read = b""
    async for chunk in response.aiter_raw():
        read += chunk
        if len(read) >= EXCERPT * 4:
            break
    return read.decode("utf-8", "replace")[:EXCERPT]


def client() -> httpx.AsyncClient:
    """The client the job posts with: timeouts, no redirects, no proxy from the environment
    (a proxy would connect to the URL's host itself, past the address check)."""
    return httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False, trust_env=False)
