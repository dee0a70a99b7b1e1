"""A shop in dry run: everything happens, but e-mails go to the dry-run outbox and count nowhere."""

import email
import email.policy
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from tests.dispatch.test_dispatch import LATER, at, dispatcher
from tests.factories import create_shop, order_event, post_event
from tests.smtp_sink import smtp_sink


async def test_dry_run_writes_files_and_does_not_count_for_the_cooldown(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings, tmp_path: Path
) -> None:
    shop = await create_shop(client, dry_run=True)
    assert (await post_event(client, shop, order_event(1, 1, 5))).status_code == 202
    outbox = tmp_path / "dry"
    with smtp_sink() as (sink, port):
        worker = dispatcher(engine, settings, port, dry_run_outbox=str(outbox))
        assert (await worker.tick(now=at(LATER))).sent == 1
    assert sink.messages == []  # nothing reached the SMTP server
    [path] = outbox.glob("*.eml")
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert message["X-Relance-Dry-Run"] == "1"
    items = (
        await client.get(f"/api/v1/shops/{shop.id}/review-requests", headers=shop.auth)
    ).json()["items"]
    [request] = items
    assert (request["status"], request["dry_run"]) == ("sent", True)
    detail = await client.get(
        f"/api/v1/shops/{shop.id}/review-requests/{request['id']}", headers=shop.auth
    )
    assert [d["dry_run"] for d in detail.json()["deliveries"]] == [True]

    # Out of dry run: the same customer's next order is not held back by the cooldown, since
    # the dry run wrote to no one.
    patched = await client.patch(
        f"/api/v1/shops/{shop.id}/settings", json={"dry_run": False}, headers=shop.auth
    )
    assert patched.status_code == 200
    assert (await post_event(client, shop, order_event(2, 1, 5))).status_code == 202
    with smtp_sink() as (sink, port):
        worker = dispatcher(engine, settings, port, dry_run_outbox=str(outbox))
        stats = await worker.tick(now=at(LATER + timedelta(days=1)))
    assert (stats.sent, stats.skipped, len(sink.messages)) == (1, 0, 1)
    assert "X-Relance-Dry-Run" not in sink.messages[0]
