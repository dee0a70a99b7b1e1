"""Alerts to the merchant (a low review, paused sending): queued with their cause, sent once."""

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.alerts.jobs import send_due
from app.alerts.models import Alert
from app.config import Settings
from tests.dispatch.test_dispatch import LATER, at, dispatcher
from tests.factories import create_shop, order_event, post_event
from tests.reviews.test_review_page import send_one
from tests.smtp_sink import smtp_sink

BOSS = "patron@boutique.example"


async def alerts(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(select(func.count()).select_from(Alert)) or 0


async def test_a_low_review_is_alerted_once_in_the_shop_s_language(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    sent = await send_one(client, engine, settings, notification_email=BOSS)
    comment = "Colis arrivé cassé."
    assert (
        await client.post(sent.link, data={"rating": "2", "comment": comment})
    ).status_code == 200
    assert (await client.post(sent.link, data={"rating": "1"})).status_code == 200  # an edit
    assert await alerts(engine) == 1
    with smtp_sink() as (sink, port):
        smtp = settings.model_copy(update={"mail_url": f"smtp://127.0.0.1:{port}"})
        assert await send_due(engine, smtp, "test-worker") == 1
        assert await send_due(engine, smtp, "test-worker") == 0  # sent once
    [message] = sink.messages
    assert sink.envelopes[0][1] == [BOSS]
    assert "2 étoile(s)" in str(message["Subject"]) and "REF1042" in str(message["Subject"])
    body = message.get_content()
    assert comment in body and "/reviews/" in body


async def test_a_good_review_or_no_address_is_not_alerted(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    good = await send_one(client, engine, settings, notification_email=BOSS)
    assert (await client.post(good.link, data={"rating": "4"})).status_code == 200
    assert await alerts(engine) == 0


async def test_paused_sending_is_alerted_once(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    shop = await create_shop(client, notification_email=BOSS)
    for order_id in (1, 2):
        assert (await post_event(client, shop, order_event(order_id, 1, 5))).status_code == 202
    with smtp_sink() as (sink, port):
        sink.rcpt_reply = "554 5.7.1 Sender refused by policy"
        stats = await dispatcher(engine, settings, port).tick(now=at(LATER))
        assert stats.paused_shops == {shop.id}
        await dispatcher(engine, settings, port).tick(now=at(LATER))  # still paused: no repeat
    assert await alerts(engine) == 1
    with smtp_sink() as (sink, port):
        smtp = settings.model_copy(update={"mail_url": f"smtp://127.0.0.1:{port}"})
        assert await send_due(engine, smtp, "test-worker") == 1
    [message] = sink.messages
    assert "pause" in str(message["Subject"])
    assert "554" in message.get_content()


async def test_an_unreachable_server_retries_the_alert_later(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    sent = await send_one(client, engine, settings, notification_email=BOSS)
    assert (await client.post(sent.link, data={"rating": "1"})).status_code == 200
    with smtp_sink() as (sink, port):
        sink.rcpt_reply = "451 4.3.0 Try again later"
        smtp = settings.model_copy(update={"mail_url": f"smtp://127.0.0.1:{port}"})
        assert await send_due(engine, smtp, "test-worker") == 0
    async with engine.connect() as conn:
        row = (await conn.execute(select(Alert.status, Alert.attempts, Alert.last_error))).one()
    assert (row.status, row.attempts) == ("scheduled", 1)
    assert row.last_error is not None and "451" in row.last_error
