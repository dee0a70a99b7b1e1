"""The review page end to end: the e-mail that arrives at a real SMTP server, its star link
followed over HTTP, the form parsed as HTML and posted, the review read back through the API."""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.requests.models import Delivery, ReviewRequest
from app.reviews.models import Review
from app.security import UNSUBSCRIBE, sign_token
from tests.dispatch.test_dispatch import LATER, at, dispatcher
from tests.factories import ShopInfo, create_shop, order_event, post_event
from tests.smtp_sink import smtp_sink

BASE = "https://reviews.example.test"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"


class Form(HTMLParser):
    """The fields of the page's form: checked radios, the textarea, every radio offered."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.checked: dict[str, str] = {}
        self.radios: dict[str, list[str]] = {}
        self.textarea: str | None = None
        self._in_textarea = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.action = a.get("action")
        elif tag == "input" and a.get("type") == "radio":
            name, value = a["name"] or "", a["value"] or ""
            self.radios.setdefault(name, []).append(value)
            if "checked" in a:
                self.checked[name] = value
        elif tag == "textarea":
            self._in_textarea, self.textarea = True, ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._in_textarea = False

    def handle_data(self, data: str) -> None:
        if self._in_textarea:
            self.textarea = (self.textarea or "") + data


def form_of(html: str) -> Form:
    parser = Form()
    parser.feed(html)
    return parser


@dataclass
class Sent:
    shop: ShopInfo
    message: EmailMessage
    link: str  # the path of the review page, /r/{token}

    def star(self, n: int) -> str:
        return f"{self.link}?rating={n}"


async def send_one(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings, **shop_settings: Any
) -> Sent:
    """A shop, a delivered order, and its review-request e-mail received by aiosmtpd."""
    shop = await create_shop(client, **shop_settings)
    assert (await post_event(client, shop, order_event(1042, 1, 5))).status_code == 202
    with smtp_sink() as (sink, port):
        assert (await dispatcher(engine, settings, port).tick(now=at(LATER))).sent == 1
    [message] = sink.messages
    html = message.get_body(("html",))
    assert html is not None
    links = set(re.findall(rf'href="{re.escape(BASE)}(/r/[^"?]+)', html.get_content()))
    [link] = links
    # The e-mail is dated in the future (the tick ran at now + 3 days): bring it back to now,
    # so that the link's age and the click rules see a message sent a minute ago.
    async with engine.begin() as conn:
        await conn.execute(
            update(Delivery).values(sent_at=datetime.now(UTC) - timedelta(minutes=1))
        )
        await conn.execute(
            update(ReviewRequest).values(sent_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    return Sent(shop, message, link)


async def reviews_of(client: httpx.AsyncClient, shop: ShopInfo, **query: Any) -> list[Any]:
    response = await client.get(f"/api/v1/shops/{shop.id}/reviews", params=query, headers=shop.auth)
    assert response.status_code == 200, response.text
    items: list[Any] = response.json()["items"]
    return items


async def test_star_link_to_review_to_api(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    sent = await send_one(client, engine, settings)
    text = sent.message.get_body(("plain",))
    assert text is not None and f"{BASE}{sent.link}" in text.get_content()
    assert str(sent.message["Message-ID"]) not in sent.link  # no row id in the link
    assert not re.search(r"/r/\d+\.", sent.link)

    page = await client.get(sent.star(4), headers={"User-Agent": BROWSER})
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert "Content-Security-Policy" in page.headers
    assert 'lang="fr"' in page.text and "Ma Boutique" in page.text and "REF1042" in page.text
    assert "achat vérifié" in page.text  # the legal mention, in the customer's language
    form = form_of(page.text)
    assert form.checked == {"rating": "4"}
    assert form.radios["rating"] == ["5", "4", "3", "2", "1"]
    assert form.radios["product_12-0"] == ["5", "4", "3", "2", "1"]
    assert form.radios["nps"] == [str(n) for n in range(11)]
    assert form.action == sent.link

    thanks = await client.post(
        sent.link,
        data={"rating": "5", "comment": "Très beau mug.", "product_12-0": "4", "nps": "9"},
    )
    assert thanks.status_code == 200, thanks.text
    assert "Merci" in thanks.text

    [review] = await reviews_of(client, sent.shop)
    assert review["rating"] == 5
    assert review["comment"] == "Très beau mug."
    assert review["nps"] == 9
    assert review["status"] == "pending"
    assert review["order_id"] == 1042
    assert review["language"] == "fr"
    assert review["products"] == [
        {"product_id": 12, "product_attribute_id": 0, "name": "Mug en grès", "rating": 4}
    ]


async def test_a_second_submission_updates_the_same_review_until_the_grace_ends(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    sent = await send_one(client, engine, settings)
    first = {"rating": "2", "comment": "Colis arrivé cassé, service client injoignable."}
    assert (await client.post(sent.link, data=first)).status_code == 200
    again = await client.get(sent.link)
    assert form_of(again.text).checked == {"rating": "2"}
    async with engine.connect() as conn:
        assert await conn.scalar(select(Review.sentiment)) == "negative"  # for the KPIs
    edit = await client.post(
        sent.link, data={"rating": "4", "comment": "Finalement parfait, je recommande !"}
    )
    assert edit.status_code == 200
    [review] = await reviews_of(client, sent.shop)
    assert (review["rating"], review["comment"]) == (4, "Finalement parfait, je recommande !")
    async with engine.connect() as conn:
        assert await conn.scalar(select(Review.sentiment)) == "positive"  # the edit's

    async with engine.begin() as conn:
        await conn.execute(update(Review).values(created_at=datetime.now(UTC) - timedelta(days=8)))
    late = await client.post(sent.link, data={"rating": "1"})
    assert late.status_code == 409
    assert "ne peut plus être modifié" in late.text
    [review] = await reviews_of(client, sent.shop)
    assert review["rating"] == 4


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"comment": "Sans note"}, "note globale"),
        ({"rating": "6", "comment": "Sans note"}, "note globale"),
        ({"rating": "4", "comment": "x" * 5001}, "trop long"),
        ({"rating": "4", "comment": "Sans note", "product_99-0": "5"}, "produit de cette commande"),
        ({"rating": "4", "comment": "Sans note", "nps": "11"}, "recommandation"),
    ],
)
async def test_invalid_input_re_renders_the_form_keeping_what_was_typed(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    settings: Settings,
    data: dict[str, str],
    message: str,
) -> None:
    sent = await send_one(client, engine, settings)
    response = await client.post(sent.link, data=data)
    assert response.status_code == 422
    assert message in response.text
    assert form_of(response.text).textarea == data["comment"][:5001]
    assert await reviews_of(client, sent.shop) == []


async def test_html_in_a_comment_is_escaped_where_it_is_shown(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    sent = await send_one(client, engine, settings)
    evil = '</textarea><script>alert("x")</script>'
    assert (await client.post(sent.link, data={"rating": "3", "comment": evil})).status_code == 200
    page = await client.get(sent.link)
    assert "<script>" not in page.text
    assert "&lt;script&gt;" in page.text
    assert form_of(page.text).textarea == evil


@pytest.mark.parametrize("kind", ["tampered", "other purpose", "garbage", "unknown id"])
async def test_bad_tokens_get_a_friendly_404_page(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings, kind: str
) -> None:
    sent = await send_one(client, engine, settings)
    token = sent.link.removeprefix("/r/")
    public_id = token.rpartition(".")[0]
    bad = {
        "tampered": token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        "other purpose": sign_token(settings.secret_key, UNSUBSCRIBE, public_id),
        "garbage": "not-a-token",
        "unknown id": sign_token(settings.secret_key, "review", "unknownpublicid"),
    }[kind]
    for method in ("GET", "POST"):
        response = await client.request(method, f"/r/{bad}", data={"rating": "5"})
        assert response.status_code == 404, (method, response.text)
        assert response.headers["content-type"].startswith("text/html")
        assert "Traceback" not in response.text
    assert await reviews_of(client, sent.shop) == []


async def test_an_expired_link_is_410(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    sent = await send_one(client, engine, settings, review_link_ttl="P30D")
    async with engine.begin() as conn:
        await conn.execute(
            update(ReviewRequest).values(sent_at=datetime.now(UTC) - timedelta(days=31))
        )
    page = await client.get(sent.link, headers={"Accept-Language": "de"})
    assert page.status_code == 410
    assert "expiré" in page.text  # the request's language, not the browser's
    assert (await client.post(sent.link, data={"rating": "5"})).status_code == 410


async def test_settings_switch_off_product_ratings_and_nps(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    sent = await send_one(
        client, engine, settings, review_product_ratings=False, review_nps=False,
        review_default_status="published", review_policy_url="https://shop.example/avis",
    )  # fmt: skip
    form = form_of((await client.get(sent.link)).text)
    assert set(form.radios) == {"rating"}
    assert 'href="https://shop.example/avis"' in (await client.get(sent.link)).text
    assert (await client.post(sent.link, data={"rating": "5", "nps": "3"})).status_code == 200
    [review] = await reviews_of(client, sent.shop)
    assert (review["status"], review["nps"], review["products"]) == ("published", None, [])


async def test_posts_are_rate_limited_per_link_and_bounded_in_size(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    sent = await send_one(client, engine, settings)
    big = await client.post(sent.link, content=b"rating=5&comment=" + b"x" * (65 * 1024))
    assert big.status_code == 413
    codes = [(await client.post(sent.link, data={"rating": "5"})).status_code for _ in range(12)]
    assert codes[:9] == [200] * 9  # the oversize one counted as the first of ten
    assert codes[9:] == [429, 429, 429]


async def test_a_person_s_click_is_recorded_once_scanners_and_head_are_not(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    sent = await send_one(client, engine, settings)

    async def clicked() -> datetime | None:
        async with engine.connect() as conn:
            value: datetime | None = await conn.scalar(select(Delivery.clicked_at))
            return value

    await client.head(sent.link, headers={"User-Agent": BROWSER})
    await client.get(sent.link, headers={"User-Agent": "Mozilla/5.0 (compatible; Barracuda)"})
    await client.get(sent.link)  # no user agent at all: a script, not a person
    assert await clicked() is None
    await client.get(sent.star(5), headers={"User-Agent": BROWSER})
    first = await clicked()
    assert first is not None
    await client.get(sent.link, headers={"User-Agent": BROWSER})
    assert await clicked() == first


async def test_a_click_right_after_sending_is_a_scanner(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    sent = await send_one(client, engine, settings)
    async with engine.begin() as conn:
        await conn.execute(update(Delivery).values(sent_at=datetime.now(UTC)))
    await client.get(sent.link, headers={"User-Agent": BROWSER})
    async with engine.connect() as conn:
        assert await conn.scalar(select(Delivery.clicked_at)) is None


async def test_reminders_stop_once_the_customer_reviewed(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    sent = await send_one(client, engine, settings, reminders=["P3D"])
    assert (await client.post(sent.link, data={"rating": "5"})).status_code == 200
    with smtp_sink() as (sink, port):
        stats = await dispatcher(engine, settings, port).tick(now=at(LATER + timedelta(days=4)))
    assert (stats.sent, stats.skipped, sink.messages) == (0, 1, [])
    async with engine.connect() as conn:
        reminder = (
            await conn.execute(select(Delivery.status, Delivery.reason).where(Delivery.seq == 1))
        ).one()
    assert tuple(reminder) == ("skipped", "reviewed")


async def test_moderation_filters_and_exports(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    sent = await send_one(client, engine, settings)
    assert (
        await client.post(sent.link, data={"rating": "4", "comment": "=HYPERLINK(1)"})
    ).status_code == 200
    [review] = await reviews_of(client, sent.shop)
    url = f"/api/v1/shops/{sent.shop.id}/reviews"
    patched = await client.patch(
        f"{url}/{review['id']}",
        json={"status": "published", "reply": "Merci Marie !"},
        headers=sent.shop.auth,
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["status"], patched.json()["reply"]) == ("published", "Merci Marie !")
    assert patched.json()["replied_at"] is not None
    assert await reviews_of(client, sent.shop, status="pending") == []
    assert len(await reviews_of(client, sent.shop, status="published", rating=4)) == 1
    assert await reviews_of(client, sent.shop, rating=5) == []
    today = datetime.now(UTC).date()
    assert len(await reviews_of(client, sent.shop, **{"from": str(today - timedelta(days=1))})) == 1
    assert await reviews_of(client, sent.shop, to=str(today - timedelta(days=2))) == []

    csv_export = await client.get(f"{url}/export?format=csv", headers=sent.shop.auth)
    assert csv_export.status_code == 200
    lines = csv_export.text.strip().splitlines()
    assert lines[0].startswith("id,order_id,rating,comment")
    assert "'=HYPERLINK(1)" in lines[1]  # no formula reaches a spreadsheet
    json_export = await client.get(f"{url}/export?format=json", headers=sent.shop.auth)
    assert [r["id"] for r in json_export.json()["items"]] == [review["id"]]

    other = await create_shop(client, name="Autre")
    assert (
        await client.patch(f"{url}/{review['id']}", json={"status": "rejected"}, headers=other.auth)
    ).status_code == 404
