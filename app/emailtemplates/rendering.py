"""Merchant templates without I/O: the sandbox they render in, the checks a saved one passes,
and which saved template an e-mail uses.

A merchant's template is untrusted code. It renders in Jinja's immutable sandbox (no access to
attributes starting with `_`, to functions' internals or to methods that change a list), with
`StrictUndefined` (a misspelt name fails instead of printing nothing), autoescaped HTML, no
loader (no `include`, `import` or `extends`), and `range` as its only global.
"""

import operator
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from types import TracebackType
from typing import Any, Literal, TypeVar

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from app.mail.templates import Rendered


class TemplateKind(StrEnum):
    """Which e-mail a template is for: the first, any reminder, or the n-th reminder."""

    REQUEST = "request"
    REMINDER = "reminder"
    REMINDER_1 = "reminder_1"
    REMINDER_2 = "reminder_2"
    REMINDER_3 = "reminder_3"

    @property
    def is_reminder(self) -> bool:
        return self is not TemplateKind.REQUEST


# The languages Relance writes in (`languages.LANGUAGES`): a request is always in one of them.
Language = Literal["de", "en", "es", "fr", "it"]

VARIABLES = frozenset(
    {
        "shop_name",
        "firstname",
        "lastname",
        "order_reference",
        "order_date",
        "products",
        "review_url",
        "star_urls",
        "unsubscribe_url",
        "is_reminder",
    }
)
PRODUCT_FIELDS = ("name", "url", "image_url", "quantity", "reference")
FIELDS = ("subject", "html", "text")
# In bytes of UTF-8.
LIMITS = {"subject": 300, "html": 200 * 1024, "text": 100 * 1024}
# What one operator of a template may build: `'x' * 10**9` is refused, not allocated.
MAX_REPEAT = 1_000_000
MAX_EXPONENT = 100
_REVIEW_LINKS = frozenset({"review_url", "star_urls"})
_FORBIDDEN = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, op: str, left: Any, right: Any) -> Any:
        if op == "**":
            if not isinstance(right, int | float) or abs(right) > MAX_EXPONENT:
                raise SecurityError(f"exponents are limited to {MAX_EXPONENT}")
            return operator.pow(left, right)
        if _repeated_size(left, right) > MAX_REPEAT or _repeated_size(right, left) > MAX_REPEAT:
            raise SecurityError(f"a repeated string or list is limited to {MAX_REPEAT:,} items")
        return operator.mul(left, right)


def _repeated_size(sequence: Any, times: Any) -> int:
    if isinstance(sequence, str | list | tuple) and isinstance(times, int):
        return len(sequence) * times
    return 0


def _environment(autoescape: bool) -> _Sandbox:
    env = _Sandbox(autoescape=autoescape, undefined=StrictUndefined, keep_trailing_newline=True)
    env.globals = {"range": env.globals["range"]}  # the sandbox's bounded range
    return env


_HTML = _environment(autoescape=True)
_PLAIN = _environment(autoescape=False)


@lru_cache(maxsize=512)
def _compiled(field: str, source: str) -> Template:
    return (_HTML if field == "html" else _PLAIN).from_string(source)


@dataclass(frozen=True)
class MerchantTemplate:
    subject: str
    html: str
    text: str


@dataclass(frozen=True)
class Problem:
    """Why a template is refused: which field, on which line (when there is one), what."""

    field: str
    line: int | None
    msg: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.msg}" if self.line else self.msg


def render(template: MerchantTemplate, context: Mapping[str, Any]) -> Rendered:
    """The three parts of an e-mail from a merchant's template; Jinja or sandbox errors raise."""
    variables = {name: context[name] for name in VARIABLES}
    variables["products"] = [
        {f: p.get(f) for f in PRODUCT_FIELDS} for p in context["products"] if isinstance(p, dict)
    ]
    subject = _compiled("subject", template.subject).render(variables)
    return Rendered(
        subject=" ".join(subject.split()),
        html=_compiled("html", template.html).render(variables),
        text=_compiled("text", template.text).render(variables),
    )


T = TypeVar("T")


def pick(saved: Mapping[str, T], is_reminder: bool, number: int) -> T | None:
    """The saved template an e-mail uses: reminder n takes `reminder_n`, else `reminder`.

    None: the project's own templates apply.
    """
    if not is_reminder:
        return saved.get(TemplateKind.REQUEST)
    return saved.get(f"reminder_{number}") or saved.get(TemplateKind.REMINDER)


def check(template: MerchantTemplate, kind: TemplateKind) -> list[Problem]:
    """What stops a template from being saved; empty when it may be.

    Each part must fit its size, compile, and use only the documented variables; the HTML and
    text parts must use the review link (`review_url` or `star_urls`) and `unsubscribe_url`.
    Then it is rendered for two sample orders (one with every field, one with none of the
    optional ones), and both parts must show the links.
    """
    problems: list[Problem] = []
    for field in FIELDS:
        problems += _check_source(field, getattr(template, field))
    if problems:
        return problems
    full, sparse = _samples(kind.is_reminder)
    for variables in (full, sparse):
        for field in FIELDS:
            try:
                rendered = _compiled(field, getattr(template, field)).render(variables)
            except Exception as exc:
                msg = _message(exc)
                if variables is sparse:
                    msg += " (for an order without names, reference, date or products)"
                return [Problem(field, _template_line(exc.__traceback__), msg)]
            if field != "subject" and variables is full:
                problems += _links_shown(field, rendered, full)
    return problems


def _check_source(field: str, source: str) -> list[Problem]:
    if len(source.encode()) > LIMITS[field]:
        return [Problem(field, None, f"at most {LIMITS[field]} bytes")]
    try:
        tree = (_HTML if field == "html" else _PLAIN).parse(source)
    except TemplateSyntaxError as exc:
        return [Problem(field, exc.lineno, exc.message or "syntax error")]
    for forbidden in tree.find_all(_FORBIDDEN):
        tag = type(forbidden).__name__.lower()
        return [Problem(field, forbidden.lineno, f"'{tag}' is not available in e-mail templates")]
    assigned = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    allowed = VARIABLES | assigned | {"range", "loop"}
    used = {n.name for n in tree.find_all(nodes.Name) if n.ctx == "load"}
    for node in tree.find_all(nodes.Name):
        if node.ctx == "load" and node.name not in allowed:
            return [Problem(field, node.lineno, f"unknown variable '{node.name}'")]
    if field == "subject":
        return []
    missing = []
    if not used & _REVIEW_LINKS:
        missing.append(Problem(field, None, "must use review_url or star_urls (the review link)"))
    if "unsubscribe_url" not in used:
        missing.append(Problem(field, None, "must use unsubscribe_url (the unsubscribe link)"))
    return missing


def _links_shown(field: str, rendered: str, variables: Mapping[str, Any]) -> list[Problem]:
    found = []
    links = [variables["review_url"], *variables["star_urls"]]
    if not any(link in rendered for link in links):
        found.append(Problem(field, None, "the review link is not shown (review_url, star_urls)"))
    if variables["unsubscribe_url"] not in rendered:
        found.append(Problem(field, None, "the unsubscribe link (unsubscribe_url) is not shown"))
    return found


def _samples(is_reminder: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    review = "https://relance.invalid/r/sample.check"
    full = {
        "shop_name": "Boutique",
        "firstname": "Marie",
        "lastname": "Dupont",
        "order_reference": "XKBKNABJK",
        "order_date": "14 novembre 2026",
        "products": [
            {
                "name": "Mug",
                "url": "https://shop.invalid/mug",
                "image_url": "https://shop.invalid/mug.jpg",
                "quantity": 2,
                "reference": "MUG-01",
            }
        ],
        "review_url": review,
        "star_urls": [f"{review}?rating={n}" for n in range(1, 6)],
        "unsubscribe_url": "https://relance.invalid/u/sample.check",
        "is_reminder": is_reminder,
    }
    sparse = full | {
        "firstname": None,
        "lastname": None,
        "order_reference": None,
        "order_date": None,
        "products": [],
    }
    return full, sparse


def _template_line(tb: TracebackType | None) -> int | None:
    # Jinja rewrites the traceback so that a template's frames carry the template's lines.
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _message(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
