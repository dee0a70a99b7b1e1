"""Calls to a shop's PrestaShop Webservice: Basic auth, JSON, timeouts, retries, a pace.

The key is the Basic-auth user name with an empty password. It is never logged and never part
of an error: errors name the resource and the method, which is what a merchant fixes in the
Webservice's permissions.
"""

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from app.prestashop.vocabulary import RunStatus

TIMEOUT = httpx.Timeout(20.0, connect=5.0)
ATTEMPTS = 3  # a 5xx, 429 or timeout is tried this many times in all
BACKOFF = 1.0  # seconds before the first retry, doubled after each
MAX_RETRY_AFTER = 30.0  # a shop asking for a longer pause gets it on the next run instead
# Polite to a shop that serves customers with the same PHP workers: at most 4 calls a second.
MIN_INTERVAL = 0.25
MAX_BYTES = 8 * 1024 * 1024  # a page of 50 full orders is far below this
EXCERPT = 200

Sleep = Callable[[float], Awaitable[None]]


class WebserviceError(Exception):
    """A call that did not give what was asked; `status` says which kind, for the run's record."""

    def __init__(self, status: RunStatus, method: str, resource: str, detail: str) -> None:
        self.status = status
        self.method = method
        self.resource = resource
        self.detail = detail
        super().__init__(f"{method} {resource}: {detail}")


def api_base(url: str) -> str:
    """The Webservice's root: the shop's address or its `/api` URL, without a trailing slash."""
    base = url.rstrip("/")
    return base if urlsplit(base).path.endswith("/api") else f"{base}/api"


def _excerpt(response_text: str, key: str) -> str:
    # PrestaShop explains a refusal in `{"errors": [{"code", "message"}]}`; keep its words.
    try:
        errors = json.loads(response_text).get("errors") or []
        text = "; ".join(str(e.get("message", "")) for e in errors if isinstance(e, dict))
    except (ValueError, AttributeError):
        text = response_text
    return " ".join(text.replace(key, "…").split())[:EXCERPT] if key else text[:EXCERPT]


def _refusal(code: int, method: str, resource: str, said: str) -> WebserviceError:
    suffix = f" (the shop says: {said})" if said else ""
    if code in (401, 403):
        return WebserviceError(
            RunStatus.UNAUTHORIZED, method, resource,
            f"HTTP {code}: the key was refused; check that it is active and has the "
            f"{method} permission on '{resource}'{suffix}",
        )  # fmt: skip
    if code in (404, 405):
        return WebserviceError(
            RunStatus.NOT_FOUND, method, resource,
            f"HTTP {code}: no such Webservice resource or method; check the URL and that the "
            f"Webservice is enabled{suffix}",
        )  # fmt: skip
    return WebserviceError(RunStatus.UNAVAILABLE, method, resource, f"HTTP {code}{suffix}")


class Webservice:
    """One shop's Webservice for one run: a client reused across calls, paced."""

    def __init__(
        self,
        url: str,
        key: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.base = api_base(url)
        self._key = key
        self._sleep = sleep
        self._next_at = 0.0
        self._client = httpx.AsyncClient(
            auth=httpx.BasicAuth(key, ""),
            timeout=TIMEOUT,
            transport=transport,
            follow_redirects=False,
            headers={"Accept": "application/json", "User-Agent": "Relance"},
        )

    async def __aenter__(self) -> "Webservice":
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._client.aclose()

    async def _pace(self) -> None:
        wait = self._next_at - time.monotonic()
        if wait > 0:
            await self._sleep(wait)
        self._next_at = time.monotonic() + MIN_INTERVAL

    async def get(self, resource: str, params: dict[str, str] | None = None) -> Any:
        """The decoded JSON of `GET /api/{resource}`, retried on 5xx, 429 and timeouts."""
        query = {**(params or {}), "output_format": "JSON"}
        delay = BACKOFF
        for attempt in range(1, ATTEMPTS + 1):
            await self._pace()
            try:
                code, text, retry_after = await self._fetch(resource, query)
            except httpx.TimeoutException:
                failure = WebserviceError(
                    RunStatus.UNAVAILABLE, "GET", resource, "timed out (no answer in time)"
                )
                retry_after = None
            except httpx.TransportError as exc:
                failure = WebserviceError(
                    RunStatus.UNAVAILABLE, "GET", resource,
                    f"cannot connect ({type(exc).__name__})",
                )  # fmt: skip
                retry_after = None
            else:
                if 200 <= code < 300:
                    return self._decode(resource, text)
                failure = _refusal(code, "GET", resource, _excerpt(text, self._key))
                if code != 429 and code < 500:
                    raise failure
            if attempt == ATTEMPTS or (retry_after or 0) > MAX_RETRY_AFTER:
                raise failure
            await self._sleep(max(delay, retry_after or 0))
            delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    async def _fetch(self, resource: str, query: dict[str, str]) -> tuple[int, str, float | None]:
        async with self._client.stream("GET", f"{self.base}/{resource}", params=query) as answer:
            if 300 <= answer.status_code < 400:
                # Never followed: a redirect would carry the key to wherever it points.
                return answer.status_code, "redirected; give the final URL", None
            body = bytearray()
            async for chunk in answer.aiter_bytes():
                body += chunk
                if len(body) > MAX_BYTES:
                    raise WebserviceError(
                        RunStatus.MALFORMED, "GET", resource, f"answer over {MAX_BYTES} bytes"
                    )
            retry_after = answer.headers.get("Retry-After", "")
            wait = float(retry_after) if retry_after.isdigit() else None
            return answer.status_code, body.decode("utf-8", "replace"), wait

    def _decode(self, resource: str, text: str) -> Any:
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            raise WebserviceError(
                RunStatus.MALFORMED, "GET", resource,
                "the answer is not JSON (is output_format=JSON supported, and the URL the "
                "Webservice's?)",
            ) from None  # fmt: skip

    async def rows(self, resource: str, params: dict[str, str]) -> list[dict[str, Any]]:
        """The list under `resource` (PrestaShop answers `[]` rather than an empty list)."""
        data = await self.get(resource, params)
        if data == [] or data == {}:
            return []
        items = data.get(resource) if isinstance(data, dict) else None
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise WebserviceError(
                RunStatus.MALFORMED, "GET", resource, f"expected {{'{resource}': [...]}}"
            )
        return items

    async def one(self, resource: str, name: str, item_id: int) -> dict[str, Any]:
        """`GET /api/{resource}/{id}`: the object under `name` (e.g. `customer`)."""
        data = await self.get(f"{resource}/{item_id}")
        item = data.get(name) if isinstance(data, dict) else None
        if not isinstance(item, dict):
            raise WebserviceError(
                RunStatus.MALFORMED, "GET", resource, f"expected {{'{name}': {{...}}}}"
            )
        return item


@dataclass(frozen=True)
class Connector:
    """How runs open a Webservice: the network by default; tests give an ASGI stand-in and a
    sleep that returns at once."""

    transport: httpx.AsyncBaseTransport | None = None
    sleep: Sleep = asyncio.sleep

    def open(self, url: str, key: str) -> Webservice:
        return Webservice(url, key, transport=self.transport, sleep=self.sleep)
