"""Pages for people (the review and unsubscribe pages): HTML in the visitor's language.

Plumbing: one autoescaped Jinja environment for `templates/pages/`, the texts of each language
(`templates/pages/texts/<lang>.json`), and the HTML error page. No JavaScript, no third-party
resource: the stylesheet is inline.
"""

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from app.languages import FALLBACK_LANGUAGE, LANGUAGES

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
