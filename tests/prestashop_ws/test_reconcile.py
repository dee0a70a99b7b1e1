"""Reconciliation: the periodic job applies what the webhooks missed, shop by shop."""

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import utcnow
from app.prestashop import runs
from app.prestashop.client import Connector
from app.prestashop.jobs import reconcile_due
from app.prestashop.models import PrestashopWebservice
from tests.prestashop_ws.conftest import connected_shop
from tests.prestashop_ws.standin import Shop
from tests.prestashop_ws.test_backfill import local

SECRET = "test-secret-key"


def two_orders(ps: Shop) -> None:
    """Changed in the last day (where a first run looks): one delivered, one awaiting payment."""
    ps.customer(7, "marie@example.fr")
    ps.customer(8, "paul@example.fr")
    ps.order(101, 7, [(1, 2, local(3)), (3, 5, local(0.5))], local(0.5))
    ps.order(102, 8, [(4, 10, local(0.4))], local(0.4))


async def row(engine: AsyncEngine, shop_id: str) -> PrestashopWebservice:
    async with engine.connect() as conn:
        found = (
            await conn.execute(
                select(PrestashopWebservice).where(PrestashopWebservice.shop_id == shop_id)
            )
        ).one()
    return found  # type: ignore[return-value]


async def test_reconciliation_applies_what_was_missed_and_moves_its_cursor(
    api: httpx.AsyncClient, ps: Shop, engine: AsyncEngine, connector: Connector
) -> None:
    two_orders(ps)
    shop = await connected_shop(api)
    now = utcnow()
    assert await reconcile_due(engine, SECRET, now, connector) == {shop.id: "ok"}
    first = await row(engine, shop.id)
    assert first.last_status == "ok" and first.claimed_until is None
    assert first.reconciled_until is not None
    assert first.next_run_at == now + runs.RECONCILE_EVERY
    requests = await api.get(f"/api/v1/shops/{shop.id}/review-requests", headers=shop.auth)
    assert [r["order_id"] for r in requests.json()["items"]] == [101]

    # Not due again before its interval.
    assert await reconcile_due(engine, SECRET, now + timedelta(minutes=1), connector) == {}

    # The shop cancels order 101; the webhook never arrives; the next run applies it.
    ps.move(101, 7, 6, local(0.01))
    later = now + runs.RECONCILE_EVERY
    ps.calls.clear()
    assert await reconcile_due(engine, SECRET, later, connector) == {shop.id: "ok"}
    [request] = (
        await api.get(f"/api/v1/shops/{shop.id}/review-requests", headers=shop.auth)
    ).json()["items"]
    assert request["status"] == "cancelled"
    # Asked from the cursor on, in the shop's local time, with date=1.
    [(_, params)] = [c for c in ps.calls if c[0] == "orders"]
    assert params["date"] == "1"
    # (The cursor is the newest change the first run saw, local(0.4); its date is one day
    # ago's only in the morning: compare with the cursor itself.)
    assert first.reconciled_until is not None
    start = datetime.fromisoformat(params["filter[date_upd]"][1:].split(",")[0])
    cursor = first.reconciled_until.astimezone(ZoneInfo("Europe/Paris")).replace(tzinfo=None)
    assert cursor - timedelta(hours=1) <= start <= cursor


async def test_recent_changes_are_left_to_their_webhook(
    api: httpx.AsyncClient, ps: Shop, engine: AsyncEngine, connector: Connector
) -> None:
    ps.customer(7, "marie@example.fr")
    ps.order(101, 7, [(1, 5, local(0))], local(0))
    shop = await connected_shop(api)
    await reconcile_due(engine, SECRET, utcnow(), connector)
    requests = await api.get(f"/api/v1/shops/{shop.id}/review-requests", headers=shop.auth)
    assert requests.json()["items"] == []


async def test_a_failing_shop_is_recorded_and_released(
    api: httpx.AsyncClient, ps: Shop, engine: AsyncEngine, connector: Connector
) -> None:
    two_orders(ps)
    shop = await connected_shop(api)
    ps.denied.add("customers")
    now = utcnow()
    assert await reconcile_due(engine, SECRET, now, connector) == {shop.id: "unauthorized"}
    failed = await row(engine, shop.id)
    assert failed.claimed_until is None and failed.reconciled_until is None
    assert failed.last_error is not None and "GET customers" in failed.last_error
    status = await api.get(f"/api/v1/shops/{shop.id}/prestashop-webservice", headers=shop.auth)
    assert status.json()["last_status"] == "unauthorized"


async def test_a_shop_is_claimed_by_one_run_at_a_time(
    api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    shop = await connected_shop(api)
    now = utcnow()
    assert await runs.claim_due(engine, now, 10) == [shop.id]
    assert await runs.claim_due(engine, now, 10) == []
    # A crashed run's lease ends; then another run takes the shop.
    assert await runs.claim_due(engine, now + runs.LEASE + timedelta(seconds=1), 10) == [shop.id]


async def test_an_unreadable_key_is_a_status_not_a_crash(
    api: httpx.AsyncClient, engine: AsyncEngine, connector: Connector
) -> None:
    shop = await connected_shop(api)
    async with engine.begin() as conn:
        await conn.execute(update(PrestashopWebservice).values(key_encrypted="garbage"))
    statuses = await reconcile_due(engine, SECRET, utcnow(), connector)
    assert statuses == {shop.id: "unreadable_key"}


def test_the_job_is_collected(tmp_path: Path) -> None:
    from app.config import Settings
    from app.db import create_engine
    from app.scheduler import collect

    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}",
        secret_key="k",
        _env_file=None,  # type: ignore[call-arg]
    )
    names = [job.name for job in collect(create_engine(settings.database_url), settings)]
    assert "prestashop_reconciliation" in names
