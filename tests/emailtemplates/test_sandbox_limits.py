"""The bounds on a merchant template's work: what loops over, nests, sets and builds is refused
on save with its line, what runs too long, builds or writes too much stops quickly at save and
at sending (the e-mail fails alone), and a realistic template over a thousand products still
renders. Each probe runs in a child process, so a regression cannot hang the suite."""

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from jinja2.exceptions import SecurityError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.emailtemplates import sandbox
from app.emailtemplates.models import EmailTemplate
from app.emailtemplates.rendering import (
    OUTPUT,
    MerchantTemplate,
    TemplateKind,
    check,
    render,
)
from app.requests.models import Delivery
from tests.dispatch.test_dispatch import LATER, at, dispatcher
from tests.emailtemplates.test_templates_api import TEMPLATE, url
from tests.factories import create_shop, order_event, post_event
from tests.smtp_sink import smtp_sink

ROOT = Path(__file__).resolve().parents[2]
QUICK = 3  # seconds, on a busy machine
LINKS = '<a href="{{ review_url }}">Avis</a> <a href="{{ unsubscribe_url }}">Stop</a>\n'
TEXT = "{{ review_url }} {{ unsubscribe_url }}"
LOOPS_3 = (
    "{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}"
    "{% endfor %}{% endfor %}{% endfor %}"
)

# Refused on save by a rule on the source, on the line of the offending tag.
STATIC = {
    "loop over a repeated string": (
        "{% for c in 'x'*100000 %}{% for d in 'x'*100000 %}{% endfor %}{% endfor %}",
        "a loop may only go over products, star_urls (or a slice of them) or range(...)",
    ),
    "loop over a literal list": ("{% for i in [1, 2] %}{% endfor %}", "a loop may only go"),
    "loop over a filtered list": (
        "{% for p in products|sort(attribute='name') %}{% endfor %}",
        "a loop may only go",
    ),
    "doubling through set": (
        "{% set a = 'x' * 1000 %}{% set b = a ~ a %}{% set c = b ~ b %}{{ c }}",
        "a 'set' may not use 'a'",
    ),
    "doubling through a set block": (
        "{% set a = 'xx' %}{% set b %}{{ a }}{{ a }}{% endset %}{{ b }}",
        "a 'set' may not use 'a'",
    ),
    "doubling through with": (
        "{% with a = 'x'*1000 %}{% with b = a ~ a %}{{ b }}{% endwith %}{% endwith %}",
        "may not use 'a'",
    ),
    "recursive macro": (
        "{% macro m(n) %}{{ m(n) }}{% endmacro %}{{ m(1) }}",
        "'macro' is not available",
    ),
    "call block": (
        "{% call range(3) %}x{% endcall %}",
        "'call' is not available",
    ),
    "recursive loop": (
        "{% for p in products recursive %}{{ loop(products) }}{% endfor %}",
        "a recursive loop",
    ),
    "four nested loops": (
        "{% for a in range(2) %}{% for b in range(2) %}{% for c in range(2) %}"
        "{% for d in range(2) %}{% endfor %}{% endfor %}{% endfor %}{% endfor %}",
        "at most 3 deep",
    ),
    "an uncounted list named products": (
        "{% set products = range(100000)|list %}{% for p in products %}{% endfor %}",
        "'products' is the e-mail's own",
    ),
}
# Pass the rules on the source, stopped while rendering.
RUNTIME = {
    "three nested range loops": (LOOPS_3, "over 100,000 steps"),
    "nested loops over products and range": (
        "{% for p in products %}{% for i in range(100000) %}{% endfor %}{% endfor %}"
        "{% for u in star_urls %}{% for i in range(100000) %}{% endfor %}{% endfor %}",
        "over 100,000 steps",
    ),
    "string doubling with +": ("{{ 'x' * 60000 + 'y' * 60000 }}", "limited to 100,000"),
    "a long repeat": ("{{ 'x' * 100001 }}", "limited to 100,000"),
    "a huge output": ("{{ 'x' * 100000 }}" * 2000, "limited to 1,048,576 bytes"),
    "one expression joining big strings": (
        "{{ " + " ~ ".join(["'x'*99999"] * 40) + " }}",
        "builds over 2,000,000",
    ),
    "padding a string": ("{{ ''.ljust(10**9) }}", "limited to 100,000"),
    "a wide format": ("{{ '%999999999s' % 'x' }}", "a width in a format"),
    "a wide format filter": ("{{ '%999999999s'|format('x') }}", "a width in a format"),
    "a wide str.format": ("{{ '{:>999999999}'.format('x') }}", "a width in a format"),
    "replace multiplying": ("{{ ('x'*99999)|replace('x', 'y'*99999) }}", "'replace' would"),
    "join multiplying": ("{{ ('x'*99999)|join('y'*99999) }}", "'join' would"),
    "join method": ("{{ ('y'*9).join('x'*99999) }}", "'join' is not available"),
    "indent multiplying": ("{{ ('\\n'*99999)|indent(99999) }}", "'indent' would"),
    "a huge number": ("{{ (((10**100)**100)**100)**100 }}", "limited to 100,000 bits"),
}

_CHILD = """
import json, sys, time
from app.emailtemplates.rendering import MerchantTemplate, TemplateKind, check, render
from app.emailtemplates.rendering import _samples
template = MerchantTemplate(subject="Avis", html=sys.argv[2], text=sys.argv[3])
started = time.monotonic()
if sys.argv[1] == "check":
    said = [str(p) for p in check(template, TemplateKind.REQUEST)]
else:
    try:
        render(template, _samples(False)[0])
        said = []
    except Exception as exc:
        said = [type(exc).__name__ + ": " + str(exc)]
print(json.dumps({"said": said, "seconds": time.monotonic() - started}))
"""


def in_child(what: str, html: str, text: str = TEXT) -> tuple[list[str], float]:
    """`check` or `render` of a template in a child process: what it said, how long it took."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, what, html, text],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=20,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{what} of a merchant template ran for over 20 s")
    assert done.returncode == 0, done.stderr[-3000:]
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer["said"], answer["seconds"]


@pytest.mark.parametrize(("html", "expected"), STATIC.values(), ids=STATIC.keys())
def test_rules_on_the_source_refuse_on_save_and_at_sending(html: str, expected: str) -> None:
    said, seconds = in_child("check", LINKS + html)
    assert len(said) == 1 and said[0].startswith("line 2: ") and expected in said[0], said
    assert seconds < QUICK
    # A template stored before the rule existed fails at sending, without running.
    said, seconds = in_child("render", LINKS + html)
    assert said and said[0].startswith("SecurityError: line 2: ") and expected in said[0], said
    assert seconds < QUICK


@pytest.mark.parametrize(("html", "expected"), RUNTIME.values(), ids=RUNTIME.keys())
def test_work_past_a_bound_stops_quickly_on_save_and_at_sending(html: str, expected: str) -> None:
    said, seconds = in_child("check", LINKS + html)
    assert len(said) == 1 and expected in said[0], said
    # Stopped by the bound it names (the deadline is 1 s), compiling included: quickly.
    assert seconds < QUICK
    said, seconds = in_child("render", LINKS + html)
    assert said and said[0].startswith("SecurityError: ") and expected in said[0], said
    assert seconds < QUICK


def test_messages_name_the_types_a_merchant_knows() -> None:
    said = {}
    for subject in ("{{ products[0] }}", "{{ range(2)[5] }}"):
        template = MerchantTemplate(subject=subject, html=LINKS, text=TEXT)
        [problem] = check(template, TemplateKind.REQUEST)
        said[subject] = problem.msg
    assert said["{{ products[0] }}"].startswith("list object has no element 0 (for an order")
    assert said["{{ range(2)[5] }}"] == "range object has no element 5"


def test_the_text_part_and_the_subject_are_bounded_too() -> None:
    said, _ = in_child("check", LINKS, text=TEXT + LOOPS_3)
    assert said and "over 100,000 steps" in said[0], said
    template = MerchantTemplate(subject="{{ 'x' * 1100 }}", html=LINKS, text=TEXT)
    [problem] = check(template, TemplateKind.REQUEST)
    assert problem.field == "subject" and f"limited to {OUTPUT['subject']:,} bytes" in problem.msg


def test_the_budget_counts_every_item_and_the_deadline_every_step() -> None:
    env = sandbox.environment(autoescape=False)
    context = {"products": [], "star_urls": ["a", "b"]}
    whole = env.from_string("{% for i in range(100000) %}{% endfor %}done")
    far = time.monotonic() + 60
    assert sandbox.run(whole, context, ("products", "star_urls"), 100, far) == "done"
    # Two more items, taken from star_urls, are over the budget.
    over = env.from_string(
        "{% for i in range(100000) %}{% endfor %}{% for u in star_urls %}{% endfor %}"
    )
    with pytest.raises(SecurityError, match="over 100,000 steps"):
        sandbox.run(over, context, ("products", "star_urls"), 100, far)
    # A slice of a list counts as the list does (Relance's own templates loop over
    # `products[:5]`).
    many = {"products": [{"name": str(n)} for n in range(100)], "star_urls": []}
    sliced = env.from_string(
        "{% for a in products[:50] %}{% for b in products[1:] %}{% for c in products[::2] %}"
        "{% endfor %}{% endfor %}{% endfor %}"
    )
    with pytest.raises(SecurityError, match="over 100,000 steps"):
        sandbox.run(sliced, many, ("products", "star_urls"), 100, far)
    # A deadline already passed stops the first step, and the first chunk written.
    passed = time.monotonic() - 1
    with pytest.raises(SecurityError, match="takes over 1 s"):
        loop = env.from_string("{% for u in star_urls %}{% endfor %}")
        sandbox.run(loop, context, ("star_urls",), 100, passed)
    with pytest.raises(SecurityError, match="takes over 1 s"):
        sandbox.run(env.from_string("x"), context, (), 100, passed)


REALISTIC = (
    "<p>Bonjour{% if firstname %} {{ firstname|title }}{% endif %},</p>\n"
    "{% set greeting = 'Merci, ' ~ (firstname or 'cher client') %}<p>{{ greeting }}</p>\n"
    '<p>{% for url in star_urls %}<a href="{{ url }}">{{ loop.index }}★</a>'
    "{% if not loop.last %} {% endif %}{% endfor %}</p>\n"
    "<p>{{ products|length }} produits : {{ products|map(attribute='name')|join(', ') }}</p>\n"
    "<table>{% for p in products %}<tr><td>{{ loop.index }}/{{ loop.length }}</td>"
    '<td><img src="{{ p.image_url }}" alt="{{ p.name }}"></td><td>{{ p.name|upper }}</td>'
    "<td>{% for url in star_urls %}{% set stars = loop.index %}{% for i in range(1) %}"
    '<a href="{{ url }}&amp;p={{ p.reference }}">{{ "★" * stars }}</a>'
    "{% endfor %}{% endfor %}</td>"
    "<td>{{ '%d x %s'|format(p.quantity, p.reference|replace('-', ' ')) }}</td></tr>"
    "{% endfor %}</table>\n"
    "{% if products %}<p>{{ products[0].name }} … {{ (products|last).name }}, "
    "{{ star_urls|first }}</p>{% endif %}\n"
    '<p><a href="{{ review_url }}">Avis</a> <a href="{{ unsubscribe_url }}">Stop</a></p>\n'
)


def test_a_realistic_template_over_a_thousand_products_still_renders() -> None:
    template = MerchantTemplate(
        subject="{% if is_reminder %}Rappel : {% endif %}{{ products|length }} articles",
        html=REALISTIC,
        text="{% for p in products %}- {{ p.name }}\n{% endfor %}" + TEXT,
    )
    assert check(template, TemplateKind.REQUEST) == []
    review = "https://relance.invalid/r/abc"
    context = {
        "shop_name": "Boutique",
        "firstname": "zoé",
        "lastname": None,
        "order_reference": "REF",
        "order_date": None,
        "products": [
            {
                "name": f"Mug {n}",
                "url": None,
                "image_url": f"https://shop.invalid/{n}.jpg",
                "quantity": n,
                "reference": f"MUG-{n}",
            }
            for n in range(1000)
        ],
        "review_url": review,
        "star_urls": [f"{review}?rating={n}" for n in range(1, 6)],
        "unsubscribe_url": "https://relance.invalid/u/abc",
        "is_reminder": True,
    }
    started = time.monotonic()
    rendered = render(template, context)
    assert time.monotonic() - started < sandbox.SECONDS
    assert rendered.subject == "Rappel : 1000 articles"
    assert "Bonjour Zoé" in rendered.html and "Merci, zoé" in rendered.html
    assert rendered.html.count("<tr>") == 1000 and "1000/1000" in rendered.html
    assert "MUG 999" in rendered.html and "999 x MUG 999" in rendered.html
    assert rendered.html.count("★★★★★</a>") == 1000
    assert "Mug 0 … Mug 999, https://relance.invalid/r/abc?rating=1" in rendered.html
    assert "Mug 0, Mug 1, Mug 2" in rendered.html
    assert rendered.text.count("\n- Mug") == 999


def test_compiling_a_large_part_is_not_counted_against_the_deadline() -> None:
    # About 200 KiB of HTML takes around a second to compile; it renders in milliseconds.
    line = "<p>{{ shop_name }} {% if firstname %}{{ firstname|upper }}{% endif %}</p>\n"
    template = MerchantTemplate(subject="Avis", html=LINKS + line * 2700, text=TEXT)
    assert check(template, TemplateKind.REQUEST) == []
    context = {
        "shop_name": "Boutique", "firstname": "Marie", "lastname": None,
        "order_reference": None, "order_date": None, "products": [], "review_url": "r",
        "star_urls": [], "unsubscribe_url": "u", "is_reminder": False,
    }  # fmt: skip
    assert render(template, context).html.count("Boutique MARIE") == 2700


async def test_a_nested_loop_template_is_refused_through_the_api_with_its_line(
    client: httpx.AsyncClient,
) -> None:
    shop = await create_shop(client)
    body = TEMPLATE | {"html": TEMPLATE["html"] + LOOPS_3}
    started = time.monotonic()
    response = await client.put(url(shop), json=body, headers=shop.auth)
    assert time.monotonic() - started < 3
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert any("line 6: the template's loops take over" in e["msg"] for e in errors), errors


async def test_a_stored_template_breaking_a_rule_fails_its_email_alone(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    """A template saved before the rules existed: its e-mail fails `render_failed`, at once;
    another shop's e-mail of the same tick leaves."""
    bad, good = await create_shop(client, "Ancienne"), await create_shop(client, "Bonne")
    for shop in (bad, good):
        assert (await client.put(url(shop), json=TEMPLATE, headers=shop.auth)).status_code == 201
        event = order_event(1042, 1, 5, email="marie@example.fr", language="fr")
        assert (await post_event(client, shop, event)).status_code == 202
    old = TEMPLATE["html"] + "{% for i in [1, 2] %}{% for j in range(100000) %}{% endfor %}"
    async with engine.begin() as conn:
        await conn.execute(
            update(EmailTemplate)
            .where(EmailTemplate.shop_id == bad.id)
            .values(html=old + "{% endfor %}")
        )
    with smtp_sink() as (sink, port):
        started = time.monotonic()
        stats = await dispatcher(engine, settings, port).tick(now=at(LATER))
        assert time.monotonic() - started < 10
    assert (stats.sent, stats.failed) == (1, 1)
    [message] = sink.messages
    assert "Bonne" in message["Subject"]
    async with engine.connect() as conn:
        rows = (await conn.execute(select(Delivery.shop_id, Delivery.status, Delivery.reason,
                                          Delivery.last_error))).all()  # fmt: skip
    failed = [r for r in rows if r.shop_id == bad.id]
    assert [(r.status, r.reason) for r in failed] == [("failed", "render_failed")]
    assert "a loop may only go over products" in (failed[0].last_error or "")
