"""`POST /webhooks/prestashop/{shop_id}`, served as plain ASGI ahead of FastAPI.

The inbox is by far the busiest route: every order-status change of every shop. Through
FastAPI's middleware and routing it spent 0.40-0.45 ms of CPU per webhook, served ahead of them
0.33-0.35 ms (`bench.ingest --compare-with`, 2026-12-01): `main.Relance` hands these requests
to `serve` before FastAPI sees them. What that stack did for the route is done here: errors
answered as problem+json exactly as its handlers answer them (`errors.problem_of`), and the
request counted and timed (`counters.observe`). The route declared in `router.py` documents
the inbox in OpenAPI and answers through `answer` too, were FastAPI ever to route it.

The body is read and parsed before the webhook joins a batch, so a slow sender never holds a
transaction; the answer comes after the COMMIT of its batch (`batching.py`).
"""

import time
from typing import Any

from pydantic import BaseModel
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from app import counters
from app.errors import NotFound, PayloadTooLarge, problem_of
from app.shops import service as shops
from app.webhooks import batching, service
from app.webhooks.intake import SIGNATURE_HEADERS, Arrival

MAX_BODY = 1024 * 1024
PREFIX = "/webhooks/prestashop/"


def shop_id_of(scope: Scope) -> str | None:
    """The shop id when `scope` is a POST to the inbox; None for anything else.

    Matches what FastAPI's `{shop_id}` matches (one non-empty path segment), so every other
    request, a trailing slash or another method included, is routed by FastAPI as before.
    """
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    if not path.startswith(PREFIX):
        return None
    shop_id = path[len(PREFIX) :]
    return shop_id if shop_id and "/" not in shop_id else None


async def serve(state: Any, shop_id: str, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer one webhook: what FastAPI's stack and the route did together."""
    start = time.perf_counter()
    status = 500  # counted as such if sending the answer fails (as the middleware does)
    try:
        response = await answer(state, shop_id, scope, receive)
        status = response.status_code
        await response(scope, receive, send)
    except ClientDisconnect:
        return  # the sender left before its body was read: nothing recorded, nothing to say
    finally:
        counters.observe(scope, counters.WEBHOOK_ROUTE, status, time.perf_counter() - start)


async def answer(state: Any, shop_id: str, scope: Scope, receive: Receive) -> Response:
    """The answer to one webhook; its errors as problem+json. `state` is the app's state
    (engine and settings). Raises only ClientDisconnect."""
    try:
        signature, declared = _headers(scope)
        body = await _read_body(receive, declared)
        if not shops.is_shop_id(shop_id):
            raise NotFound(f"No shop {shop_id!r}.")
        kind: str | None = None
        event: BaseModel | None = None
        error: Exception | None = None
        try:
            kind, event = service.parse(body)
        except Exception as exc:
            error = exc  # answered only to a sender whose signature is good
        arrival = Arrival(shop_id, signature, body, kind, event, error)
        committer = batching.committer(state.engine, state.settings.secret_key)
        result = await committer.submit(arrival)
        if isinstance(result, Exception):
            raise result
    except ClientDisconnect:
        raise
    except Exception as exc:
        return problem_of(exc)
    status, accepted = result
    counters.note_webhook_outcome(scope, accepted.status)
    return JSONResponse(accepted.model_dump(exclude_none=True), status_code=status)


def _headers(scope: Scope) -> tuple[dict[str, str], str | None]:
    """The headers the signature check reads (the first of each name, as `headers.get`
    does), and the declared Content-Length."""
    found: dict[str, str] = {}
    declared: str | None = None
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        if name in SIGNATURE_HEADERS and name not in found:
            found[name] = raw_value.decode("latin-1")
        elif name == "content-length" and declared is None:
            declared = raw_value.decode("latin-1")
    return found, declared


async def _read_body(receive: Receive, declared: str | None) -> bytes:
    # Past seven significant digits it is over 1 MiB: a longer number is never converted.
    if declared is not None and declared.isdigit():
        digits = declared.lstrip("0")
        if len(digits) > 7 or int(digits or "0") > MAX_BODY:
            raise PayloadTooLarge("The body is over 1 MiB.")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise PayloadTooLarge("The body is over 1 MiB.")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
