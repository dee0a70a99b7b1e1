"""A merchant's manual actions on one request: cancel, send now, reschedule, re-queue."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from tests.dispatch.test_dispatch import LATER, at, dispatcher
from tests.factories import ShopInfo, create_shop, order_event, post_event
from tests.problems import assert_problem, assert_validation_problem
from tests.smtp_sink import smtp_sink


async def one_request(client: httpx.AsyncClient, shop: ShopInfo, order_id: int = 1) -> Any:
    assert (await post_event(client, shop, order_event(order_id, 1, 5))).status_code == 202
    items = (
        await client.get(
            f"/api/v1/shops/{shop.id}/review-requests",
            params={"order_id": order_id},
            headers=shop.auth,
        )
    ).json()["items"]
    return items[0]


def url(shop: ShopInfo, request: Any, action: str) -> str:
    return f"/api/v1/shops/{shop.id}/review-requests/{request['id']}/{action}"


async def test_cancel_is_manual_and_only_once(client: httpx.AsyncClient) -> None:
    shop = await create_shop(client)
    request = await one_request(client, shop)
    done = await client.post(url(shop, request, "cancel"), headers=shop.auth)
    assert done.status_code == 200, done.text
    body = done.json()
    assert (body["status"], body["reason"]) == ("cancelled", "manual")
    assert [(d["status"], d["reason"]) for d in body["deliveries"]] == [("cancelled", "manual")]
    assert_problem(await client.post(url(shop, request, "cancel"), headers=shop.auth), 409)
    other = await create_shop(client, name="Autre")
    assert_problem(await client.post(url(shop, request, "cancel"), headers=other.auth), 404)


async def test_send_now_then_the_rules_still_apply(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    shop = await create_shop(client)
    request = await one_request(client, shop)
    before = datetime.now(UTC)
    moved = await client.post(url(shop, request, "send-now"), headers=shop.auth)
    assert moved.status_code == 200, moved.text
    due = datetime.fromisoformat(moved.json()["due_at"])
    assert before - timedelta(seconds=1) <= due <= datetime.now(UTC)
    with smtp_sink() as (sink, port):
        stats = await dispatcher(engine, settings, port).tick(now=datetime.now(UTC))
    assert (stats.sent, len(sink.messages)) == (1, 1)
    assert_problem(await client.post(url(shop, request, "send-now"), headers=shop.auth), 409)


async def test_reschedule_moves_the_next_email(client: httpx.AsyncClient) -> None:
    shop = await create_shop(client)
    request = await one_request(client, shop)
    when = datetime(2030, 1, 2, 9, 30, tzinfo=UTC)
    moved = await client.post(
        url(shop, request, "reschedule"), json={"due_at": when.isoformat()}, headers=shop.auth
    )
    assert moved.status_code == 200, moved.text
    assert datetime.fromisoformat(moved.json()["due_at"]) == when
    assert datetime.fromisoformat(moved.json()["deliveries"][0]["due_at"]) == when
    for bad in ({"due_at": "9999-12-31T00:00:00Z"}, {"due_at": "soon"}, {"when": "2030-01-01"}):
        response = await client.post(url(shop, request, "reschedule"), json=bad, headers=shop.auth)
        assert_validation_problem(response)


async def test_requeue_a_failed_email(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    shop = await create_shop(client)
    request = await one_request(client, shop)
    assert_problem(await client.post(url(shop, request, "requeue"), headers=shop.auth), 409)
    with smtp_sink() as (sink, port):
        sink.rcpt_reply = "451 4.3.0 Try again later"  # a 5xx would suppress the address
        worker = dispatcher(engine, settings, port, max_attempts=1)
        assert (await worker.tick(now=at(LATER))).failed == 1
    again = await client.post(url(shop, request, "requeue"), headers=shop.auth)
    assert again.status_code == 200, again.text
    body = again.json()
    assert (body["status"], body["reason"]) == ("scheduled", None)
    [delivery] = body["deliveries"]
    assert (delivery["status"], delivery["attempts"], delivery["last_error"]) == (
        "scheduled",
        0,
        None,
    )
    with smtp_sink() as (_, port):
        assert (await dispatcher(engine, settings, port).tick(now=at(LATER))).sent == 1


async def test_requeue_refuses_when_a_newer_request_is_live(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    shop = await create_shop(client)
    request = await one_request(client, shop)
    with smtp_sink() as (sink, port):
        sink.rcpt_reply = "451 4.3.0 Try again later"
        assert (await dispatcher(engine, settings, port, max_attempts=1).tick(now=at(LATER))).failed
    # The order reaches Delivered again: a fresh request is live for it.
    assert (await post_event(client, shop, order_event(1, 2, 5))).status_code == 202
    assert_problem(await client.post(url(shop, request, "requeue"), headers=shop.auth), 409)


async def test_cancel_after_sending_stops_the_reminders(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    shop = await create_shop(client, reminders=["P3D"])
    request = await one_request(client, shop)
    with smtp_sink() as (_, port):
        assert (await dispatcher(engine, settings, port).tick(now=at(LATER))).sent == 1
    done = await client.post(url(shop, request, "cancel"), headers=shop.auth)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "sent"
    assert [(d["kind"], d["status"], d["reason"]) for d in done.json()["deliveries"]] == [
        ("first", "sent", None),
        ("reminder", "cancelled", "manual"),
    ]


async def test_the_timeline_tells_each_step_in_order(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    shop = await create_shop(client, delay="PT0S", reminders=["P3D"])
    request = await one_request(client, shop)
    with smtp_sink() as (_, port):
        assert (await dispatcher(engine, settings, port).tick()).sent == 1  # the real clock
    assert (await client.post(url(shop, request, "cancel"), headers=shop.auth)).status_code == 200
    detail = await client.get(
        f"/api/v1/shops/{shop.id}/review-requests/{request['id']}", headers=shop.auth
    )
    steps = detail.json()["timeline"]
    names = [s["step"] for s in steps]
    # Created by the webhook in one transaction (one instant), then sent, then the reminder
    # scheduled as it was sent, then the merchant's cancel.
    assert sorted(names[:3]) == ["created", "event scheduled", "scheduled"], steps
    assert names[3:] == ["claimed", "sent", "scheduled", "cancelled"], steps
    by_step = {s["step"]: s["detail"] for s in steps}
    assert by_step["claimed"] == "first e-mail, attempt 1"
    assert by_step["event scheduled"].startswith("webhook msg_")
    assert by_step["sent"].startswith("first e-mail, Message-ID <relance.")
    assert by_step["cancelled"] == "reminder 1, manual"
    times = [datetime.fromisoformat(s["at"]) for s in steps]
    assert times == sorted(times)
