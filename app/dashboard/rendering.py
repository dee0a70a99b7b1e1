"""The dashboard's HTML: its Jinja environment, texts per language, number and date formats."""

import json
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime, format_timedelta
from babel.numbers import format_decimal, format_percent
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from app.languages import FALLBACK_LANGUAGE, LANGUAGES

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates" / "dashboard"

# Nothing from elsewhere: the stylesheet, Chart.js and its starter are the dashboard's own files.
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; frame-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


@lru_cache(maxsize=len(LANGUAGES) + 1)
def texts(language: str) -> dict[str, str]:
    """The dashboard's texts in a language, English filling any gap."""
    base: dict[str, str] = json.loads((TEMPLATES_DIR / "texts" / "en.json").read_text("utf-8"))
    if language != FALLBACK_LANGUAGE and language in LANGUAGES:
        own = json.loads((TEMPLATES_DIR / "texts" / f"{language}.json").read_text("utf-8"))
        base = {**base, **own}
    return base


def value_text(value: float | None, unit: str, language: str) -> str:
    """A KPI's value as a merchant reads it: 87 %, 3 hours, 4.6, 120."""
    if value is None:
        return "—"
    if unit == "ratio":
        return format_percent(value, format="#,##0.#%", locale=language)
    if unit == "seconds":
        return format_timedelta(
            timedelta(seconds=value), threshold=1.5, format="short", locale=language
        )
    if unit in ("rating", "messages"):
        return format_decimal(value, format="#,##0.0#", locale=language)
    return format_decimal(round(value), locale=language)


def when(moment: datetime | None, timezone: str, language: str) -> str:
    if moment is None:
        return "—"
    local = moment.astimezone(ZoneInfo(timezone))
    return format_datetime(local, format="short", locale=language)


def day(value: date | None, language: str) -> str:
    return "—" if value is None else format_date(value, format="medium", locale=language)


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        auto_reload=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["tojson_attr"] = lambda v: json.dumps(v, ensure_ascii=False)
    return env


def render(
    template: str, language: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    language = language if language in LANGUAGES else FALLBACK_LANGUAGE
    t = texts(language)
    html = (
        environment()
        .get_template(template)
        .render(
            {
                "signed_in": False,
                "nav": None,
                **context,
                "t": t,
                "lang": language,
                "value_text": lambda v, unit: value_text(v, unit, language),
                "day": lambda d: day(d, language),
            }
        )
    )
    return HTMLResponse(html, status_code=status_code, headers=HEADERS)


def error_page(language: str, status_code: int, key: str) -> HTMLResponse:
    """An error page in the visitor's language: `key` names its title and message."""
    return render(
        "error.html", language, {"title_key": f"{key}_title", "message_key": key}, status_code
    )
