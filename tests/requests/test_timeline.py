"""The timeline tells the steps no other row records: moved into the send window, moved by a
settings change or by hand, re-queued, claimed."""

from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from tests.dispatch.test_dispatch import LATER, at, dispatcher
from tests.factories import ShopInfo, create_shop, order_event, post_event
from tests.requests.test_manual_actions import one_request, url
from tests.smtp_sink import smtp_sink


async def timeline(client: httpx.AsyncClient, shop: ShopInfo, request: Any) -> list[Any]:
    detail = await client.get(
        f"/api/v1/shops/{shop.id}/review-requests/{request['id']}", headers=shop.auth
    )
    assert detail.status_code == 200, detail.text
    steps: list[Any] = detail.json()["timeline"]
    return steps


def step(steps: list[Any], name: str) -> Any:
    found = [s for s in steps if s["step"] == name]
    assert len(found) == 1, (name, steps)
    return found[0]


async def test_an_email_moved_into_the_send_window_says_when_its_delay_ended(
    client: httpx.AsyncClient,
) -> None:
    # Delivered at 23:00 Paris time, no delay: the window opens at 09:00 the next morning.
    shop = await create_shop(
        client, delay="PT0S", send_window={"start": "09:00", "end": "18:00"}, send_spread=None
    )
    delivered = datetime.fromisoformat("2030-03-05T23:00:00+01:00")
    assert (await post_event(client, shop, order_event(1, 1, 5, delivered))).status_code == 202
    [request] = (
        await client.get(f"/api/v1/shops/{shop.id}/review-requests", headers=shop.auth)
    ).json()["items"]
    moved = step(await timeline(client, shop, request), "moved into the send window")
    assert moved["detail"] == (
        "first e-mail: the delay ended 2030-03-05T22:00:00+00:00, due 2030-03-06T08:00:00+00:00"
    )


async def test_an_email_due_inside_the_window_was_not_moved(client: httpx.AsyncClient) -> None:
    shop = await create_shop(client, delay="PT0S", send_window=None)
    request = await one_request(client, shop)
    names = [s["step"] for s in await timeline(client, shop, request)]
    assert "moved into the send window" not in names and "claimed" not in names


async def test_a_settings_change_and_the_merchants_moves_are_steps(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    shop = await create_shop(client, delay="P2D", send_window=None)
    request = await one_request(client, shop)
    old_due = datetime.fromisoformat(request["due_at"])
    patched = await client.patch(
        f"/api/v1/shops/{shop.id}/settings", json={"delay": "P5D"}, headers=shop.auth
    )
    assert patched.status_code == 200, patched.text
    rescheduled = step(await timeline(client, shop, request), "rescheduled")
    new_due = old_due + timedelta(days=3)
    assert rescheduled["detail"] == (
        f"first e-mail: the shop's settings changed, due {old_due.isoformat()} → "
        f"{new_due.isoformat()}"
    )
    assert (await client.post(url(shop, request, "send-now"), headers=shop.auth)).is_success
    assert step(await timeline(client, shop, request), "moved")["detail"] == "sent now by hand"

    with smtp_sink() as (sink, port):  # it fails for good
        sink.rcpt_reply = "451 4.3.0 Try again later"
        worker = dispatcher(engine, settings, port, max_attempts=1)
        assert (await worker.tick(now=at(LATER))).failed == 1
    assert (await client.post(url(shop, request, "requeue"), headers=shop.auth)).is_success
    steps = await timeline(client, shop, request)
    assert step(steps, "re-queued")["detail"] == (
        "by hand, with fresh attempts (it had failed, smtp_unavailable: 451 4.3.0 Try again later)"
    )
    assert step(steps, "claimed")["detail"] == "first e-mail"  # the re-queue reset attempts
    names = [s["step"] for s in steps]
    assert names.index("rescheduled") < names.index("moved") < names.index("re-queued")
