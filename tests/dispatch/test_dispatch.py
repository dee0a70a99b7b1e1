"""The dispatcher against a real SMTP server: sent, skipped, retried, failed, paused."""

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.dispatch.jobs import Dispatcher
from tests.factories import ShopInfo, create_shop, order_event, post_event
from tests.smtp_sink import smtp_sink

LATER = timedelta(days=3)


def at(delta: timedelta) -> datetime:
    return datetime.now(UTC) + delta


async def requests_of(client: httpx.AsyncClient, shop: ShopInfo, **query: Any) -> list[Any]:
    response = await client.get(
        f"/api/v1/shops/{shop.id}/review-requests", params=query, headers=shop.auth
    )
    assert response.status_code == 200, response.text
    items: list[Any] = response.json()["items"]
    return items


def dispatcher(engine: AsyncEngine, settings: Settings, port: int, **extra: Any) -> Dispatcher:
    smtp = settings.model_copy(
        update={"mail_url": f"smtp://127.0.0.1:{port}", "smtp_timeout": 5.0, **extra}
    )
    return Dispatcher(engine, smtp)


async def test_due_request_is_sent_once_in_the_customers_language(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    shop = await create_shop(client, from_email="avis@boutique.example")
    await post_event(
        client,
        shop,
        order_event(1042, 1, 5, email="Hans@Example.de", language="de", firstname="Hans"),
    )
    sent_at = at(LATER)
    with smtp_sink() as (sink, port):
        worker = dispatcher(engine, settings, port)
        assert (await worker.tick(now=at(timedelta(days=1)))).sent == 0  # not due yet
        stats = await worker.tick(now=sent_at)
        again = await worker.tick(now=sent_at + timedelta(hours=1))
    assert (stats.sent, again.sent) == (1, 0)
    [message] = sink.messages
    assert sink.envelopes == [("avis@boutique.example", ["Hans@Example.de"])]
    assert message["To"] == "Hans@Example.de"
    assert message["Content-Language"] == "de"
    assert message["From"].addresses[0].addr_spec == "avis@boutique.example"
    assert message["From"].addresses[0].display_name == "Ma Boutique"
    assert message["Message-ID"].startswith("<relance.")
    # The tick's clock, to the second (RFC 5322 dates have no fraction).
    assert message["Date"].datetime == sent_at.replace(microsecond=0)
    assert "REF1042" in message["Subject"]
    assert message.is_multipart()
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert isinstance(text, EmailMessage) and isinstance(html, EmailMessage)
    assert "Hans" in text.get_content()
    assert "https://reviews.example.test/r/" in html.get_content()
    [item] = await requests_of(client, shop)
    assert item["status"] == "sent"
    assert item["attempts"] == 1
    detail = (
        await client.get(f"/api/v1/shops/{shop.id}/review-requests/{item['id']}", headers=shop.auth)
    ).json()
    assert detail["deliveries"][0]["message_id"] == message["Message-ID"]
    assert detail["deliveries"][0]["status"] == "sent"


async def test_cancelled_before_due_is_never_sent(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    shop = await create_shop(client)
    await post_event(client, shop, order_event(1, 1, 5))
    await post_event(client, shop, order_event(1, 2, 7))
    with smtp_sink() as (sink, port):
        stats = await dispatcher(engine, settings, port).tick(now=at(LATER))
    assert stats.sent == 0 and sink.messages == []
    [item] = await requests_of(client, shop)
    assert (item["status"], item["reason"]) == ("cancelled", "order_refunded")


async def test_never_paid_order_is_skipped_as_unpaid(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    # A shop that triggers on "Awaiting bank wire payment": the customer never pays.
    shop = await create_shop(client, trigger_state_ids=[10], cancel_state_ids=[6], delay="PT30S")
    await post_event(client, shop, order_event(3, 1, 10))
    with smtp_sink() as (sink, port):
        stats = await dispatcher(engine, settings, port).tick(now=at(timedelta(minutes=5)))
    assert (stats.sent, stats.skipped, sink.messages) == (0, 1, [])
    [item] = await requests_of(client, shop)
    assert (item["status"], item["reason"]) == ("skipped", "unpaid")


async def test_paid_in_an_older_event_counts_as_paid(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    shop = await create_shop(client, trigger_state_ids=[10], cancel_state_ids=[6], delay="PT30S")
    await post_event(client, shop, order_event(3, 5, 10))
    await post_event(client, shop, order_event(3, 4, 2))  # older, but paid: a fact of history
    with smtp_sink() as (sink, port):
        stats = await dispatcher(engine, settings, port).tick(now=at(timedelta(minutes=5)))
    assert stats.sent == 1 and len(sink.messages) == 1


async def test_customer_cooldown_skips_a_second_order(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    shop = await create_shop(client)
    await post_event(client, shop, order_event(1, 1, 5, email="marie@example.fr"))
    await post_event(client, shop, order_event(2, 1, 5, email=" MARIE@example.fr"))
    with smtp_sink() as (sink, port):
        stats = await dispatcher(engine, settings, port).tick(now=at(LATER))
    assert (stats.sent, stats.skipped, len(sink.messages)) == (1, 1, 1)
    reasons = sorted(str(i["reason"]) for i in await requests_of(client, shop))
    assert reasons == ["None", "customer_cooldown"]


async def test_max_age_skips_what_is_too_late(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    shop = await create_shop(client, max_age="P5D")
    await post_event(client, shop, order_event(1, 1, 5))
    with smtp_sink() as (sink, port):
        stats = await dispatcher(engine, settings, port).tick(now=at(timedelta(days=6)))
    assert (stats.skipped, sink.messages) == (1, [])
    [item] = await requests_of(client, shop)
    assert item["reason"] == "max_age"


async def test_transient_error_retries_with_backoff_then_sends(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    shop = await create_shop(client)
    await post_event(client, shop, order_event(1, 1, 5))
    with smtp_sink() as (sink, port):
        worker = dispatcher(engine, settings, port, retry_base=60.0)
        sink.rcpt_reply = "451 4.3.0 Try again later"
        tried_at = at(LATER)
        first = await worker.tick(now=tried_at)
        [item] = await requests_of(client, shop)
        assert (first.retried, item["status"], item["attempts"]) == (1, "scheduled", 1)
        # The first back-off is `retry_base` itself.
        assert datetime.fromisoformat(item["due_at"]) == tried_at + timedelta(seconds=60)
        sink.rcpt_reply = None
        assert (await worker.tick(now=at(LATER + timedelta(seconds=30)))).sent == 0  # backing off
        second = await worker.tick(now=at(LATER + timedelta(minutes=2)))
    assert second.sent == 1 and len(sink.messages) == 1
    [item] = await requests_of(client, shop)
    assert (item["status"], item["attempts"]) == ("sent", 2)


async def test_transient_errors_fail_after_max_attempts(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    shop = await create_shop(client)
    await post_event(client, shop, order_event(1, 1, 5))
    with smtp_sink() as (sink, port):
        sink.rcpt_reply = "451 4.3.0 Try again later"
        worker = dispatcher(engine, settings, port, max_attempts=3, retry_base=1.0)
        for hours in range(1, 5):
            await worker.tick(now=at(LATER + timedelta(hours=hours)))
    [item] = await requests_of(client, shop)
    assert (item["status"], item["reason"], item["attempts"]) == ("failed", "smtp_unavailable", 3)


async def test_recipient_rejected_fails_at_once(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    shop = await create_shop(client)
    await post_event(client, shop, order_event(1, 1, 5))
    with smtp_sink() as (sink, port):
        sink.rcpt_reply = "550 5.1.1 No such user"
        stats = await dispatcher(engine, settings, port).tick(now=at(LATER))
    assert stats.failed == 1
    [item] = await requests_of(client, shop)
    assert (item["status"], item["reason"], item["attempts"]) == ("failed", "recipient_rejected", 1)


async def test_authentication_failure_pauses_the_shop_and_keeps_requests(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings, app: Any
) -> None:
    shop = await create_shop(client)
    for order_id in (1, 2, 3):
        await post_event(client, shop, order_event(order_id, 1, 5, email=f"c{order_id}@example.fr"))
    with smtp_sink(credentials=("relance", "right")) as (sink, port):
        wrong = settings.model_copy(
            update={"mail_url": f"smtp://relance:wrong@127.0.0.1:{port}", "smtp_timeout": 5.0}
        )
        stats = await Dispatcher(engine, wrong).tick(now=at(LATER))
        assert stats.sent == 0 and stats.paused_shops == {shop.id}
        items = await requests_of(client, shop)
        assert {i["status"] for i in items} == {"scheduled"}
        assert {i["attempts"] for i in items} == {0}
        sending = (await client.get(f"/api/v1/shops/{shop.id}/sending", headers=shop.auth)).json()
        assert sending["paused"] is True and "535" in sending["reason"]
        ready = (await client.get("/readyz")).json()
        assert [p["shop_id"] for p in ready["paused_shops"]] == [shop.id]
        # Paused: nothing is claimed, even with the right password.
        right = settings.model_copy(
            update={"mail_url": f"smtp://relance:right@127.0.0.1:{port}", "smtp_timeout": 5.0}
        )
        assert (await Dispatcher(engine, right).tick(now=at(LATER))).sent == 0
        resumed = await client.post(f"/api/v1/shops/{shop.id}/sending/resume", headers=shop.auth)
        assert resumed.status_code == 200
        assert (await Dispatcher(engine, right).tick(now=at(LATER))).sent == 3
    assert sorted(e[1][0] for e in sink.envelopes) == [
        "c1@example.fr",
        "c2@example.fr",
        "c3@example.fr",
    ]


async def test_expired_lease_is_reclaimed(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    """A worker that claimed and died: after its lease, another worker sends the e-mail."""
    from app.db import transaction
    from app.dispatch import service

    shop = await create_shop(client)
    await post_event(client, shop, order_event(1, 1, 5))
    async with transaction(engine) as conn:
        batch = await service.claim(
            conn, worker="dead-worker", now=at(LATER), lease=120, limit=10, message_domain="x.test"
        )
    assert len(batch.claims) == 1
    with smtp_sink() as (sink, port):
        worker = dispatcher(engine, settings, port)
        assert (await worker.tick(now=at(LATER + timedelta(seconds=60)))).sent == 0
        assert (await worker.tick(now=at(LATER + timedelta(seconds=121)))).sent == 1
    assert len(sink.messages) == 1
    [item] = await requests_of(client, shop)
    assert (item["status"], item["attempts"]) == ("sent", 2)


async def test_reminders_follow_the_first_email(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    shop = await create_shop(client, reminders=["P7D"])
    await post_event(client, shop, order_event(1, 1, 5))
    with smtp_sink() as (sink, port):
        worker = dispatcher(engine, settings, port)
        assert (await worker.tick(now=at(LATER))).sent == 1
        assert (await worker.tick(now=at(LATER + timedelta(days=6)))).sent == 0
        assert (await worker.tick(now=at(LATER + timedelta(days=8)))).sent == 1
        assert (await worker.tick(now=at(LATER + timedelta(days=30)))).sent == 0
    assert len(sink.messages) == 2
    [item] = await requests_of(client, shop)
    detail = (
        await client.get(f"/api/v1/shops/{shop.id}/review-requests/{item['id']}", headers=shop.auth)
    ).json()
    assert [(d["kind"], d["status"]) for d in detail["deliveries"]] == [
        ("first", "sent"),
        ("reminder", "sent"),
    ]


async def test_file_outbox_writes_eml(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings, outbox: Path
) -> None:
    shop = await create_shop(client)
    await post_event(client, shop, order_event(1, 1, 5, language="it"))
    stats = await Dispatcher(engine, settings).tick(now=at(LATER))
    assert stats.sent == 1
    [eml] = list(outbox.glob("*.eml"))
    assert b"Content-Language: it" in eml.read_bytes()
