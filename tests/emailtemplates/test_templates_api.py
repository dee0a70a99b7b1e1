"""Merchant templates through the API: saved, read, deleted, refused with the field and the
line, sandboxed, previewed, and kept to their shop."""

from typing import Any, get_args

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.emailtemplates.models import EmailTemplate
from app.emailtemplates.rendering import Language, TemplateKind, pick
from app.languages import LANGUAGES
from tests.factories import ShopInfo, create_shop, order_event, post_event
from tests.problems import assert_problem, assert_validation_problem

HTML = (
    "<p>{{ shop_name }} — Hello {{ firstname }} {{ lastname }},</p>\n"
    '{% for url in star_urls %}<a href="{{ url }}">{{ loop.index }}</a>{% endfor %}\n'
    '<p><a href="{{ review_url }}">Review</a> · {{ order_reference }} · {{ order_date }}</p>\n'
    '{% for p in products %}<img src="{{ p.image_url }}" alt="{{ p.name }}">{% endfor %}\n'
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>\n'
)
TEXT = "Hello {{ firstname }},\nReview: {{ review_url }}\nUnsubscribe: {{ unsubscribe_url }}\n"
SUBJECT = (
    "{% if is_reminder %}Reminder: {% endif %}{{ shop_name }} asks about {{ order_reference }}"
)
TEMPLATE = {"subject": SUBJECT, "html": HTML, "text": TEXT}


def url(shop: ShopInfo, kind: str = "request", language: str = "fr") -> str:
    return f"/api/v1/shops/{shop.id}/templates/{kind}/{language}"


async def saved_rows(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(EmailTemplate)) or 0)


async def test_save_read_replace_delete(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    shop = await create_shop(client)
    assert_problem(await client.get(url(shop), headers=shop.auth), 404)

    created = await client.put(url(shop), json=TEMPLATE, headers=shop.auth)
    assert created.status_code == 201, created.text
    body = created.json()
    assert {k: body[k] for k in TEMPLATE} == TEMPLATE
    assert (body["kind"], body["language"]) == ("request", "fr")
    read = await client.get(url(shop), headers=shop.auth)
    assert read.status_code == 200 and read.json() == body

    changed = TEMPLATE | {"subject": "{{ shop_name }}?"}
    replaced = await client.put(url(shop), json=changed, headers=shop.auth)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["subject"] == "{{ shop_name }}?"
    assert replaced.json()["updated_at"] >= body["updated_at"]
    assert await saved_rows(engine) == 1

    assert (await client.delete(url(shop), headers=shop.auth)).status_code == 204
    assert_problem(await client.get(url(shop), headers=shop.auth), 404)
    assert_problem(await client.delete(url(shop), headers=shop.auth), 404)
    assert await saved_rows(engine) == 0


@pytest.mark.parametrize(
    ("field", "source", "expected"),
    [
        ("html", "<p>\n{{ review_url }\n{{ unsubscribe_url }}</p>", "line 2: unexpected '}'"),
        ("text", "{{ review_url }}\n{{ unsubscribe_url }}\n{{ coupon_code }}", "line 3: unknown"),
        ("subject", "{{ shop_name }} {% if %}", "line 1:"),
        ("html", '<a href="{{ unsubscribe_url }}">x</a>', "review_url or star_urls"),
        ("text", "{{ review_url }}", "unsubscribe_url"),
        ("html", "{% if false %}{{ review_url }}{{ unsubscribe_url }}{% endif %}", "not shown"),
        ("html", "{{ review_url }}{{ unsubscribe_url }}\n\n{% include 'x.html' %}", "line 3:"),
        # Fails only for an order without a first name: found on save, not at 3 a.m.
        ("text", "{{ review_url }}{{ unsubscribe_url }}\n{{ firstname.upper() }}", "line 2:"),
    ],
)
async def test_a_broken_template_is_refused_naming_field_and_line(
    client: httpx.AsyncClient, engine: AsyncEngine, field: str, source: str, expected: str
) -> None:
    shop = await create_shop(client)
    response = await client.put(url(shop), json=TEMPLATE | {field: source}, headers=shop.auth)
    errors = assert_validation_problem(response, ["body", field])
    assert any(expected in e["msg"] for e in errors), errors
    assert await saved_rows(engine) == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("subject", "x" * 301),
        ("subject", "é" * 151),  # 151 characters, 302 bytes
        ("html", "{{ review_url }}{{ unsubscribe_url }}" + "é" * 102_400),  # < 200 Ki characters
        ("text", "{{ review_url }}{{ unsubscribe_url }}" + "x" * 102_400),
        ("html", ""),
        ("text", "{{ review_url }}{{ unsubscribe_url }}\x00"),
    ],
)
async def test_oversized_or_empty_parts_are_refused(
    client: httpx.AsyncClient, engine: AsyncEngine, field: str, value: str
) -> None:
    shop = await create_shop(client)
    response = await client.put(url(shop), json=TEMPLATE | {field: value}, headers=shop.auth)
    assert_validation_problem(response, ["body", field])
    assert await saved_rows(engine) == 0


@pytest.mark.parametrize(
    "probe",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ range.__self__ }}",
        "{{ range.__init__.__globals__ }}",
        "{{ review_url.__class__ }}",
        "{{ ''|attr('__class__') }}",
        "{{ '{0.__class__}'.format(1) }}",
        "{{ products.append(1) }}",
        "{{ self.__init__.__globals__ }}",
        "{{ lipsum.__globals__ }}",
        "{{ config }}",
        "{{ request }}",
        "{{ 'x' * 1000000000 }}",
        "{{ 9 ** 99999999 }}",
    ],
)
async def test_sandbox_escapes_are_refused(
    client: httpx.AsyncClient, engine: AsyncEngine, probe: str
) -> None:
    shop = await create_shop(client)
    html = f"{{{{ review_url }}}}{{{{ unsubscribe_url }}}}\n{probe}"
    response = await client.put(url(shop), json=TEMPLATE | {"html": html}, headers=shop.auth)
    errors = assert_validation_problem(response, ["body", "html"])
    assert all(e["msg"].startswith("line 2:") for e in errors), errors
    assert await saved_rows(engine) == 0


async def test_unknown_kind_or_language_is_422(client: httpx.AsyncClient) -> None:
    shop = await create_shop(client)
    for path in (url(shop, "reminder_4"), url(shop, "request", "pt"), url(shop, "Request")):
        assert_validation_problem(
            await client.put(path, json=TEMPLATE, headers=shop.auth), source="path"
        )


async def preview(client: httpx.AsyncClient, shop: ShopInfo, **body: Any) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/shops/{shop.id}/templates/preview", json=body, headers=shop.auth
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_preview_of_a_sample_order_defaults_then_the_saved_template(
    client: httpx.AsyncClient,
) -> None:
    shop = await create_shop(client, name="Café & Co")
    default = await preview(client, shop, kind="request", language="fr")
    assert default["template"] == "default"
    assert "Bonjour Marie" in default["text"]
    assert "XKBKNABJK" in default["subject"]

    assert (await client.put(url(shop), json=TEMPLATE, headers=shop.auth)).status_code == 201
    mine = await preview(client, shop, kind="request", language="fr")
    assert mine["template"] == "merchant"
    assert mine["subject"] == "Café & Co asks about XKBKNABJK"  # plain text: not escaped
    assert "Café &amp; Co — Hello Marie Dupont" in mine["html"]  # HTML: escaped
    assert mine["html"].count("/r/sample.") == 6  # five stars and the button
    assert "https://reviews.example.test/u/sample." in mine["text"]
    assert 'src="https://shop.example/img/12.jpg"' in mine["html"]
    # Another language still has the defaults; the German sample customer is used.
    german = await preview(client, shop, kind="request", language="de")
    assert german["template"] == "default" and "Anna" in german["text"]


async def test_reminders_use_their_own_template_then_the_reminder_one(
    client: httpx.AsyncClient,
) -> None:
    shop = await create_shop(client)
    reminder = TEMPLATE | {"subject": "Any reminder {{ is_reminder }}"}
    second = TEMPLATE | {"subject": "Second reminder"}
    for kind, body in (("reminder", reminder), ("reminder_2", second)):
        saved = await client.put(url(shop, kind), json=body, headers=shop.auth)
        assert saved.status_code == 201, saved.text
    assert (await preview(client, shop, kind="request", language="fr"))["template"] == "default"
    generic = await preview(client, shop, kind="reminder", language="fr")
    assert generic["subject"] == "Any reminder True"
    first = await preview(client, shop, kind="reminder_1", language="fr")
    assert first["subject"] == "Any reminder True"
    assert (await preview(client, shop, kind="reminder_2", language="fr"))["subject"] == (
        "Second reminder"
    )
    assert (await preview(client, shop, kind="reminder_3", language="fr"))["subject"] == (
        "Any reminder True"
    )


async def test_preview_of_a_real_order_escapes_its_data(client: httpx.AsyncClient) -> None:
    shop = await create_shop(client)
    event = order_event(1042, 1, 5, firstname="<b>Zoé</b>")
    assert (await post_event(client, shop, event)).status_code == 202
    assert (await client.put(url(shop), json=TEMPLATE, headers=shop.auth)).status_code == 201
    real = await preview(client, shop, kind="request", language="fr", order_id=1042)
    assert real["subject"] == "Ma Boutique asks about REF1042"
    assert "Hello &lt;b&gt;Zoé&lt;/b&gt; Dupont" in real["html"]
    assert "<b>Zoé</b>" not in real["html"]
    assert "Hello <b>Zoé</b>," in real["text"]
    assert 'alt="Mug en grès"' in real["html"]
    # The links never carry the real request's id: a click changes nothing for the customer.
    assert "/r/sample." in real["html"]

    missing = await client.post(
        f"/api/v1/shops/{shop.id}/templates/preview",
        json={"kind": "request", "language": "fr", "order_id": 999},
        headers=shop.auth,
    )
    assert_problem(missing, 404)


async def test_another_shops_key_sees_nothing(client: httpx.AsyncClient) -> None:
    mine = await create_shop(client, name="Mine")
    theirs = await create_shop(client, name="Theirs")
    assert (await post_event(client, mine, order_event(1042, 1, 5))).status_code == 202
    assert (await client.put(url(mine), json=TEMPLATE, headers=mine.auth)).status_code == 201

    for method in ("GET", "DELETE"):
        assert_problem(await client.request(method, url(mine), headers=theirs.auth), 404)
    assert_problem(await client.put(url(mine), json=TEMPLATE, headers=theirs.auth), 404)
    for path, body in (
        ("templates/preview", {"kind": "request", "language": "fr"}),
        ("test-email", {"to": "x@example.fr", "kind": "request", "language": "fr"}),
    ):
        response = await client.post(
            f"/api/v1/shops/{mine.id}/{path}", json=body, headers=theirs.auth
        )
        assert_problem(response, 404)
    # Their own shop has no template, and cannot preview the other shop's order.
    assert_problem(await client.get(url(theirs), headers=theirs.auth), 404)
    other_order = await client.post(
        f"/api/v1/shops/{theirs.id}/templates/preview",
        json={"kind": "request", "language": "fr", "order_id": 1042},
        headers=theirs.auth,
    )
    assert_problem(other_order, 404)
    assert (await preview(client, theirs, kind="request", language="fr"))["template"] == "default"
    # And the owner's template is still there.
    assert (await client.get(url(mine), headers=mine.auth)).status_code == 200


def test_template_languages_are_the_languages_relance_writes() -> None:
    assert set(get_args(Language)) == LANGUAGES


def test_pick_prefers_the_numbered_reminder() -> None:
    saved = {"request": "R", "reminder": "M", "reminder_2": "M2"}
    assert pick(saved, False, 0) == "R"
    assert pick(saved, True, 1) == "M"
    assert pick(saved, True, 2) == "M2"
    assert pick(saved, True, 5) == "M"
    assert pick({"request": "R"}, True, 1) is None
    assert pick({TemplateKind.REMINDER_1: "M1"}, True, 1) == "M1"


async def test_a_template_past_a_limit_on_a_real_order_is_a_422_not_a_500(
    client: httpx.AsyncClient,
) -> None:
    """Saved against the sample order (one product), a template can pass; on an order of 600
    products its loops go past the sandbox's budget: the preview and the test e-mail refuse it
    naming the order, never a 500."""
    shop = await create_shop(client)
    event = order_event(1042, 1, 5)
    product = event["data"]["products"][0]
    event["data"]["products"] = [product | {"id": 100 + i} for i in range(600)]
    assert (await post_event(client, shop, event)).status_code == 202
    heavy = TEMPLATE | {
        "html": HTML + "{% for p in products %}{% for i in range(199) %}.{% endfor %}{% endfor %}"
    }
    assert (await client.put(url(shop), json=heavy, headers=shop.auth)).status_code == 201
    sample = await preview(client, shop, kind="request", language="fr")
    assert sample["template"] == "merchant"
    for path, body in (
        ("templates/preview", {"kind": "request", "language": "fr", "order_id": 1042}),
        (
            "test-email",
            {"to": "x@example.fr", "kind": "request", "language": "fr", "order_id": 1042},
        ),
    ):
        refused = await client.post(f"/api/v1/shops/{shop.id}/{path}", json=body, headers=shop.auth)
        assert_validation_problem(refused, ["body", "order_id"])
        assert "100,000" in refused.json()["detail"], refused.json()
