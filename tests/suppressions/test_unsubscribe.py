"""One-click unsubscribe end to end: the headers and link of the e-mail that arrives at a real
SMTP server, the exact RFC 8058 POST, and no e-mail to that address afterwards."""

import email
import email.policy
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.mail.message import build
from app.mail.templates import Rendered
from app.requests.models import ReviewRequest
from app.security import REVIEW, UNSUBSCRIBE, sign_token
from tests.dispatch.test_dispatch import LATER, at, dispatcher, requests_of
from tests.factories import ShopInfo, create_shop, order_event, post_event
from tests.reviews.test_review_page import BASE, send_one
from tests.smtp_sink import smtp_sink

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
ADDRESS = "marie.dupont@example.fr"  # the factories' customer, normalised


async def one_click(client: httpx.AsyncClient, path: str, method: str = "POST") -> httpx.Response:
    """The exact RFC 8058 request a mailbox provider sends."""
    return await client.request(method, path, content=b"List-Unsubscribe=One-Click", headers=FORM)


async def public_id_of(engine: AsyncEngine, order_id: int) -> str:
    async with engine.connect() as conn:
        value = await conn.scalar(
            select(ReviewRequest.public_id).where(ReviewRequest.order_id == order_id)
        )
    assert isinstance(value, str)
    return value


async def suppressions_of(client: httpx.AsyncClient, shop: ShopInfo) -> list[Any]:
    response = await client.get(f"/api/v1/shops/{shop.id}/suppressions", headers=shop.auth)
    assert response.status_code == 200, response.text
    items: list[Any] = response.json()["items"]
    return items


async def unsubscribe_path(engine: AsyncEngine, settings: Settings, order_id: int = 1042) -> str:
    token = sign_token(settings.secret_key, UNSUBSCRIBE, await public_id_of(engine, order_id))
    return f"/u/{token}"


class Forms(HTMLParser):
    """Every form of a page: its method and action, and its buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"method": a.get("method"), "action": a.get("action"), "buttons": 0})
        elif tag == "button" and self.forms:
            self.forms[-1]["buttons"] += 1


def forms_of(html: str) -> list[dict[str, Any]]:
    parser = Forms()
    parser.feed(html)
    return parser.forms


async def test_the_email_carries_both_headers_and_a_visible_link_in_both_parts(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    sent = await send_one(client, engine, settings)
    url = BASE + await unsubscribe_path(engine, settings)
    assert sent.message["List-Unsubscribe"] == f"<{url}>"
    assert sent.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html, text = sent.message.get_body(("html",)), sent.message.get_body(("plain",))
    assert html is not None and text is not None
    assert re.search(rf'<a href="{re.escape(url)}"[^>]*>Se désabonner</a>', html.get_content())
    lines = text.get_content().splitlines()
    assert lines[-2:] == ["Pour ne plus recevoir nos demandes d'avis :", url]


@pytest.mark.parametrize("to", ["zoe@example.fr", "zoë@exämple.fr"])
@pytest.mark.parametrize("host", ["r.test", "reviews." + "very-long-shop-name-" * 5 + "example"])
def test_the_header_stays_one_url_on_one_line(to: str, host: str) -> None:
    """Never folded onto a continuation line (compat32) nor into RFC 2047 encoded words (the
    UTF-8 policy used for internationalised recipients): either would break the URL."""
    url = f"https://{host}/u/AbCdEfGhIjKlMnOp.QrStUvWxYz0123456789AB"
    out = build(
        rendered=Rendered("Votre avis", "Bonjour", "<p>Bonjour</p>"),
        to=to,
        from_email="avis@shop.example",
        from_name="Boutique Démo",
        reply_to=None,
        message_id="<relance.1.shp_x@shop.example>",
        date=datetime(2026, 11, 20, 10, 0, tzinfo=UTC),
        language="fr",
        unsubscribe_url=url,
    )
    line = re.escape(f"List-Unsubscribe: <{url}>".encode())
    assert re.search(rb"^" + line + rb"\r?$", out.data, re.MULTILINE), out.data[:800]
    message = email.message_from_bytes(out.data, policy=email.policy.default)
    assert message["List-Unsubscribe"] == f"<{url}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


@pytest.mark.parametrize("language", ["en", "de", "it", "es"])
async def test_every_language_has_the_link_in_its_own_words(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings, language: str
) -> None:
    shop = await create_shop(client)
    assert (await post_event(client, shop, order_event(7, 1, 5, language=language))).is_success
    with smtp_sink() as (sink, port):
        assert (await dispatcher(engine, settings, port).tick(now=at(LATER))).sent == 1
    [message] = sink.messages
    url = BASE + await unsubscribe_path(engine, settings, 7)
    assert message["List-Unsubscribe"] == f"<{url}>"
    words = {"en": "Unsubscribe", "de": "Abmelden", "it": "Annulli l'iscrizione",
             "es": "Darse de baja"}[language]  # fmt: skip
    html, text = message.get_body(("html",)), message.get_body(("plain",))
    assert html is not None and text is not None
    assert re.search(rf'<a href="{re.escape(url)}"[^>]*>{words}</a>', html.get_content())
    assert text.get_content().splitlines()[-1] == url


async def test_one_click_post_unsubscribes_at_once_and_can_be_repeated(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    sent = await send_one(client, engine, settings)
    path = await unsubscribe_path(engine, settings)
    for _ in range(2):
        response = await one_click(client, path)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/html")
        assert "set-cookie" not in response.headers
        assert "Désabonnement confirmé" in response.text and "Ma Boutique" in response.text
    [entry] = await suppressions_of(client, sent.shop)
    assert (entry["email"], entry["reason"]) == (ADDRESS, "unsubscribed")
    # The page now says it is done, with nothing left to click.
    page = await client.get(path)
    assert "Désabonnement confirmé" in page.text and forms_of(page.text) == []


async def test_no_email_first_or_reminder_reaches_the_address_afterwards(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    sent = await send_one(client, engine, settings, reminders=["P3D"])
    # A second order, scheduled before the customer unsubscribes.
    second = order_event(1043, 1, 5, email="MARIE.Dupont@example.fr")
    assert (await post_event(client, sent.shop, second)).status_code == 202
    assert (await one_click(client, await unsubscribe_path(engine, settings))).is_success

    with smtp_sink() as (sink, port):
        stats = await dispatcher(engine, settings, port).tick(now=at(LATER + timedelta(days=4)))
    assert (stats.sent, stats.skipped, sink.messages) == (0, 2, [])
    requests = {r["order_id"]: r for r in await requests_of(client, sent.shop)}
    assert (requests[1043]["status"], requests[1043]["reason"]) == ("skipped", "suppressed")
    detail = await client.get(
        f"/api/v1/shops/{sent.shop.id}/review-requests/{requests[1042]['id']}",
        headers=sent.shop.auth,
    )
    assert [(d["kind"], d["status"], d["reason"]) for d in detail.json()["deliveries"]] == [
        ("first", "sent", None),
        ("reminder", "skipped", "suppressed"),
    ]

    # A new order for the address is recorded skipped at once: there is nothing to send.
    third = order_event(1044, 1, 5, email=" marie.dupont@EXAMPLE.fr")
    assert (await post_event(client, sent.shop, third)).status_code == 202
    [request] = await requests_of(client, sent.shop, order_id=1044)
    assert (request["status"], request["reason"]) == ("skipped", "suppressed")
    events = await client.get(
        f"/api/v1/shops/{sent.shop.id}/events", params={"order_id": 1044}, headers=sent.shop.auth
    )
    [event] = events.json()["items"]
    assert (event["outcome"], event["request_id"]) == ("skipped", request["id"])
    with smtp_sink() as (sink, port):
        stats = await dispatcher(engine, settings, port).tick(now=at(LATER * 3))
    assert (stats.sent, stats.skipped, sink.messages) == (0, 0, [])


async def test_a_get_of_the_link_changes_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    sent = await send_one(client, engine, settings, reminders=["P3D"])
    path = await unsubscribe_path(engine, settings)
    for method in ("GET", "HEAD", "GET"):
        response = await client.request(method, path)
        assert response.status_code == 200
    page = await client.get(path)
    assert page.headers["content-type"].startswith("text/html")
    assert 'lang="fr"' in page.text and "Ma Boutique" in page.text
    assert forms_of(page.text) == [{"method": "post", "action": path, "buttons": 1}]
    assert "Me désabonner" in page.text
    assert await suppressions_of(client, sent.shop) == []
    # The reminder still goes out.
    with smtp_sink() as (sink, port):
        stats = await dispatcher(engine, settings, port).tick(now=at(LATER + timedelta(days=4)))
    assert stats.sent == 1 and len(sink.messages) == 1
    # The page's own button is a POST to the same URL: it unsubscribes.
    done = await client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200
    assert [e["reason"] for e in await suppressions_of(client, sent.shop)] == ["unsubscribed"]


@pytest.mark.parametrize("kind", ["tampered", "review token", "garbage", "unknown id"])
async def test_a_bad_token_gets_a_friendly_404_and_unsubscribes_no_one(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings, kind: str
) -> None:
    sent = await send_one(client, engine, settings)
    token = (await unsubscribe_path(engine, settings)).removeprefix("/u/")
    public_id = token.rpartition(".")[0]
    bad = {
        "tampered": token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        "review token": sign_token(settings.secret_key, REVIEW, public_id),
        "garbage": "not-a-token",
        "unknown id": sign_token(settings.secret_key, UNSUBSCRIBE, "unknownpublicid"),
    }[kind]
    for method in ("GET", "POST"):
        response = await one_click(client, f"/u/{bad}", method)
        assert response.status_code == 404, (method, response.text)
        assert response.headers["content-type"].startswith("text/html")
        assert "Traceback" not in response.text
    assert await suppressions_of(client, sent.shop) == []


async def test_oversize_bodies_are_refused_and_posts_are_rate_limited(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    sent = await send_one(client, engine, settings)
    path = await unsubscribe_path(engine, settings)
    big = await client.post(path, content=b"List-Unsubscribe=One-Click&" + b"x" * (65 * 1024))
    assert big.status_code == 413
    assert await suppressions_of(client, sent.shop) == []
    codes = [(await one_click(client, path)).status_code for _ in range(11)]
    assert codes == [200] * 9 + [429, 429]  # the oversize one counted as the first of ten


async def test_a_permanent_rcpt_refusal_suppresses_the_address(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    shop = await create_shop(client)
    assert (await post_event(client, shop, order_event(1, 1, 5))).status_code == 202
    assert (await post_event(client, shop, order_event(2, 1, 5, email="x@y.fr"))).is_success
    with smtp_sink() as (sink, port):
        sink.rcpt_reply = "450 4.2.1 Mailbox busy, try later"
        stats = await dispatcher(engine, settings, port).tick(now=at(LATER))
        assert (stats.retried, stats.failed) == (2, 0)
        assert await suppressions_of(client, shop) == []  # a 4xx is no bounce

        sink.rcpt_reply = "550 5.1.1 <marie.dupont@example.fr>: Recipient address rejected"
        stats = await dispatcher(engine, settings, port).tick(now=at(LATER * 2))
    assert (stats.sent, stats.failed) == (0, 2)
    entries = await suppressions_of(client, shop)
    assert sorted((e["email"], e["reason"]) for e in entries) == [
        (ADDRESS, "hard_bounce"),
        ("x@y.fr", "hard_bounce"),
    ]
    requests = await requests_of(client, shop)
    assert {(r["status"], r["reason"]) for r in requests} == {("failed", "recipient_rejected")}
    # The next order for a bounced address is not even scheduled.
    assert (await post_event(client, shop, order_event(3, 1, 5))).status_code == 202
    [third] = await requests_of(client, shop, order_id=3)
    assert (third["status"], third["reason"]) == ("skipped", "suppressed")
