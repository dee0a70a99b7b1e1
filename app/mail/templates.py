"""Review-request e-mails rendered from `templates/emails/<lang>/`, in the customer's language."""

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from babel.dates import format_date
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from app.languages import FALLBACK_LANGUAGE

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"
_PARTS = ("review_request.subject.txt", "review_request.txt", "review_request.html")


@lru_cache(maxsize=1)
def environment() -> Environment:
    # One environment for our own templates: autoescaped HTML, undefined names are errors.
    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        auto_reload=False,
    )


@lru_cache(maxsize=1)
def available_languages() -> frozenset[str]:
    root = TEMPLATES_DIR / "emails"
    if not root.is_dir():
        return frozenset()
    return frozenset(d.name for d in root.iterdir() if all((d / part).is_file() for part in _PARTS))


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def render_review_request(language: str, context: dict[str, Any]) -> Rendered:
    env = environment()
    lang = language if language in available_languages() else FALLBACK_LANGUAGE
    parts = [env.get_template(f"emails/{lang}/{part}").render(context) for part in _PARTS]
    return Rendered(subject=" ".join(parts[0].split()), text=parts[1], html=parts[2])


def localized_date(moment: datetime | None, language: str, timezone: str) -> str | None:
    if moment is None:
        return None
    return format_date(moment.astimezone(_zone(timezone)).date(), format="long", locale=language)


@lru_cache(maxsize=256)
def _zone(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)
