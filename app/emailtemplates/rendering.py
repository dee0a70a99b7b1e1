"""Merchant templates without I/O: the sandbox they render in, the checks a saved one passes,
and which saved template an e-mail uses.

A merchant's template is untrusted code. It renders in Jinja's immutable sandbox (no access to
attributes starting with `_`, to functions' internals or to methods that change a list), with
`StrictUndefined` (a misspelt name fails instead of printing nothing), autoescaped HTML, no
loader (no `include`, `import` or `extends`), and `range` as its only global. Its work is
bounded twice: rules on its source (what a loop goes over, nesting, no macros, no chains of
`set`), refused on save and enforced again when a stored one is compiled, and the limits of
`sandbox` on each render (items taken, characters built and written, time).
"""

import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from types import TracebackType
from typing import Any, Literal, TypeVar

from jinja2 import Template, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError

from app.emailtemplates.sandbox import SECONDS, environment, run
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
# What one render of a part may write, in bytes of UTF-8: a few times its source's bound (a loop
# over a thousand products), the subject a line of a mail header.
OUTPUT = {"subject": 1024, "html": 1024 * 1024, "text": 512 * 1024}
MAX_NESTING = 3
_REVIEW_LINKS = frozenset({"review_url", "star_urls"})
_FORBIDDEN = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)


_COUNTED = ("products", "star_urls")
_RESERVED = VARIABLES | {"range", "loop"}
_HTML = environment(autoescape=True)
_PLAIN = environment(autoescape=False)


@lru_cache(maxsize=512)
def _compiled(field: str, source: str) -> Template:
    """The part compiled, when it keeps the rules `check` enforces on save: a template stored
    before a rule existed fails to render (its e-mail alone) instead of running unbounded."""
    env = _HTML if field == "html" else _PLAIN
    tree = env.parse(source)
    broken = _broken_rule(tree)
    if broken is not None:
        raise SecurityError(str(Problem(field, *broken)))
    return env.from_string(tree)


def _parts(template: "MerchantTemplate") -> dict[str, Template]:
    # Compiled before the deadline starts: compiling a large part takes its time once (cached),
    # rendering it takes its time at every e-mail.
    return {field: _compiled(field, getattr(template, field)) for field in FIELDS}


def _rendered(field: str, part: Template, variables: Mapping[str, Any], deadline: float) -> str:
    return run(part, variables, _COUNTED, OUTPUT[field], deadline)


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
    parts = _parts(template)
    deadline = time.monotonic() + SECONDS
    subject = _rendered("subject", parts["subject"], variables, deadline)
    return Rendered(
        subject=" ".join(subject.split()),
        html=_rendered("html", parts["html"], variables, deadline),
        text=_rendered("text", parts["text"], variables, deadline),
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
    parts = {}
    for field in FIELDS:
        try:  # parsed, yet Python may still refuse what it compiles to (too deeply nested)
            parts[field] = _compiled(field, getattr(template, field))
        except Exception as exc:
            return [Problem(field, None, _message(exc))]
    deadline = time.monotonic() + SECONDS
    for variables in (full, sparse):
        for field in FIELDS:
            try:
                rendered = _rendered(field, parts[field], variables, deadline)
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
    except RecursionError:
        return [Problem(field, None, "nested too deeply")]
    for forbidden in tree.find_all(_FORBIDDEN):
        tag = type(forbidden).__name__.lower()
        return [Problem(field, forbidden.lineno, f"'{tag}' is not available in e-mail templates")]
    broken = _broken_rule(tree)
    if broken is not None:
        return [Problem(field, *broken)]
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


def _broken_rule(tree: nodes.Template) -> tuple[int, str] | None:
    """The first rule that bounds a template's work which `tree` breaks, with its line."""
    for node in tree.find_all((nodes.Macro, nodes.CallBlock)):
        tag = "macro" if isinstance(node, nodes.Macro) else "call"
        return node.lineno, f"'{tag}' is not available in e-mail templates"
    for name in tree.find_all(nodes.Name):
        if name.ctx != "load" and name.name in _RESERVED:
            return name.lineno, f"'{name.name}' is the e-mail's own: it cannot be assigned"
    for loop in tree.find_all(nodes.For):
        if loop.recursive:
            return loop.lineno, "a recursive loop is not available in e-mail templates"
        if not _counted(loop.iter):
            msg = "a loop may only go over products, star_urls (or a slice of them) or range(...)"
            return loop.lineno, msg
    deep = _too_deep(tree, 0)
    if deep is not None:
        return deep.lineno, f"loops may be nested at most {MAX_NESTING} deep"
    # A `set` (or `with`) built from another one could double a text at each step.
    setters = list(tree.find_all((nodes.Assign, nodes.AssignBlock, nodes.With)))
    set_names = {n.name for s in setters for t in _targets(s) for n in _names(t)}
    for setter in setters:
        for value in _values(setter):
            for name in _names(value):
                if name.ctx == "load" and name.name in set_names:
                    return name.lineno, f"a 'set' may not use '{name.name}', itself set"
    return None


def _counted(iterable: nodes.Node) -> bool:
    if isinstance(iterable, nodes.Getitem) and isinstance(iterable.arg, nodes.Slice):
        iterable = iterable.node  # `products[:5]`: a slice counts as its list
    if isinstance(iterable, nodes.Name):
        return iterable.name in _COUNTED
    return isinstance(iterable, nodes.Call) and (
        isinstance(iterable.node, nodes.Name) and iterable.node.name == "range"
    )


def _too_deep(node: nodes.Node, depth: int) -> nodes.Node | None:
    for child in node.iter_child_nodes():
        nested = depth + isinstance(child, nodes.For)
        if nested > MAX_NESTING:
            return child
        found = _too_deep(child, nested)
        if found is not None:
            return found
    return None


def _targets(setter: nodes.Node) -> list[nodes.Node]:
    if isinstance(setter, nodes.With):
        return list(setter.targets)
    assert isinstance(setter, nodes.Assign | nodes.AssignBlock)
    return [setter.target]


def _values(setter: nodes.Node) -> list[nodes.Node]:
    if isinstance(setter, nodes.Assign):
        return [setter.node]
    if isinstance(setter, nodes.AssignBlock):
        return [*setter.body, *([setter.filter] if setter.filter else [])]
    assert isinstance(setter, nodes.With)
    return list(setter.values)


def _names(node: nodes.Node) -> list[nodes.Name]:
    return [node] if isinstance(node, nodes.Name) else list(node.find_all(nodes.Name))


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
