"""Pages for people (the review and unsubscribe pages): HTML in the visitor's language.

Plumbing: one autoescaped Jinja environment for `templates/pages/`, the texts of each language
(`templates/pages/texts/<lang>.json`), and the HTML error page. No JavaScript, no third-party
resource: the stylesheet is inline.
"""

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from app.languages import FALLBACK_LANGUAGE, LANGUAGES
from app.ratelimit import RateLimiter

PAGES_DIR = Path(__file__).resolve().parents[1] / "templates" / "pages"


@lru_cache(maxsize=1)
def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(PAGES_DIR),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        auto_reload=False,
    )


@lru_cache(maxsize=len(LANGUAGES) + 1)
def texts(language: str) -> dict[str, str]:
    """The page texts of a language, English filling any gap."""
    base: dict[str, str] = json.loads((PAGES_DIR / "texts" / "en.json").read_text("utf-8"))
    if language != FALLBACK_LANGUAGE and language in LANGUAGES:
        base = {**base, **json.loads((PAGES_DIR / "texts" / f"{language}.json").read_text("utf-8"))}
    return base


def language_of(accept_language: str | None) -> str:
    """The first supported language of an `Accept-Language` header (for pages with no request)."""
    for part in (accept_language or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return FALLBACK_LANGUAGE


def render(
    template: str, language: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    language = language if language in LANGUAGES else FALLBACK_LANGUAGE
    html = (
        environment()
        .get_template(template)
        .render({**context, "t": texts(language), "lang": language})
    )
    return HTMLResponse(
        html,
        status_code=status_code,
        headers={
            # The pages hold a personal link: no caching by proxies, no referrer to other sites,
            # nothing loaded from elsewhere.
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
            "img-src https: data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
            "X-Content-Type-Options": "nosniff",
        },
    )


def error_page(language: str, status_code: int, key: str) -> HTMLResponse:
    """A friendly error page: `key` names its title and message in the texts."""
    return render(
        "error.html", language, {"title_key": f"{key}_title", "message_key": key}, status_code
    )


# What a customer page's POST may send, and how often (per link, per client address, a minute).
MAX_FORM_BYTES = 64 * 1024
POSTS_PER_LINK = 10
POSTS_PER_ADDRESS = 60


def post_allowed(request: Request, kind: str, token: str) -> bool:
    """Count one POST of a page `kind` (review, unsubscribe) against its link and the client's
    address; False past either limit. The limiters live on the app, one pair per kind."""
    state = request.app.state
    name = f"limiters_{kind}"
    limiters: tuple[RateLimiter, RateLimiter] | None = getattr(state, name, None)
    if limiters is None:
        limiters = (RateLimiter(POSTS_PER_LINK, 60), RateLimiter(POSTS_PER_ADDRESS, 60))
        setattr(state, name, limiters)
    per_link, per_address = limiters
    address = request.client.host if request.client else "unknown"
    return per_address.allow(address) and per_link.allow(token[:64])


async def read_form(request: Request) -> bytes | None:
    """The body, or None past `MAX_FORM_BYTES` (reading no further)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
