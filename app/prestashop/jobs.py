"""Reconciliation, the periodic job: each due shop's Webservice is read for what was missed.

Each shop is leased to one run (`runs.claim_due`), so it runs once cluster-wide on any number
of replicas, on PostgreSQL and SQLite alike, without holding a transaction or an advisory lock
across the calls to the shop.
"""

import asyncio
import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.db import utcnow
from app.periodic import PeriodicJob
from app.prestashop import runs
from app.prestashop.client import Connector
from app.prestashop.vocabulary import RunStatus

log = logging.getLogger("relance.prestashop")

TICK = 60.0  # seconds between looks for due shops (each shop runs every RECONCILE_EVERY)
BATCH = 10  # shops claimed per tick
CONCURRENCY = 4  # shops read at once (each paced on its own)


async def reconcile_due(
    engine: AsyncEngine, secret_key: str, now: datetime, connector: Connector | None = None
) -> dict[str, RunStatus]:
    """Reconcile every shop that is due; how each run ended, by shop id."""
    connector = connector or Connector()
    claimed = await runs.claim_due(engine, now, BATCH)
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(shop_id: str) -> RunStatus:
        async with gate:
            return await runs.reconcile(
                engine, shop_id, secret_key=secret_key, now=now, connector=connector
            )

    statuses = await asyncio.gather(*(one(s) for s in claimed))
    return dict(zip(claimed, statuses, strict=True))


def jobs(engine: AsyncEngine, settings: Settings) -> list[PeriodicJob]:
    async def run() -> dict[str, RunStatus]:
        return await reconcile_due(engine, settings.secret_key, utcnow())

    async def stop() -> None:
        return None

    return [PeriodicJob("prestashop_reconciliation", TICK, run, stop)]
