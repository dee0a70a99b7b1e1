"""The KPIs' periodic job: each shop's expertise snapshot, once per shop-local week.

Every hour, each shop whose current week (Monday, in its zone) has no snapshot gets one, taken
as of that Monday's start. The table's unique (shop, week) and `ON CONFLICT DO NOTHING` make
a second replica or a restart harmless; on PostgreSQL an advisory lock per shop also keeps two
replicas from computing the same one at once. Only the current week is caught up: a past
Monday missed (the service down for a whole week) is left out rather than computed later from
what is known later, so every snapshot says what was known in its own week.
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.db import transaction, utcnow
from app.kpis import expertise_service
from app.kpis.models import ExpertiseSnapshot
from app.periodic import PeriodicJob
from app.shops import service as shops_service
from app.shops.models import Shop

log = logging.getLogger("relance.kpis")

TICK = 3600.0  # seconds: a shop's Monday snapshot is at most this late
PAGE = 500  # shops looked at per query


@dataclass
class SnapshotStats:
    stored: int = 0
    skipped: int = 0  # already there, or another replica was computing it
    failed: int = 0


async def snapshot_shop(engine: AsyncEngine, shop_id: str, now: datetime) -> bool:
    """Take the shop's snapshot of the week `now` falls in, unless there is one; whether this
    call stored it. The figures are read in one transaction; on SQLite it is a reader (a writer
    would hold the database's only write lock while the report runs) and the insert its own."""
    postgres = engine.dialect.name == "postgresql"
    async with transaction(engine, read_only=not postgres) as conn:
        if postgres:
            key = func.hashtextextended(f"relance.expertise:{shop_id}", 0)
            if not await conn.scalar(select(func.pg_try_advisory_xact_lock(key))):
                return False  # another replica is on it; it stores it, or the next tick does
        shop = await shops_service.get(conn, shop_id)
        zone = shop.settings.timezone
        monday = expertise_service.week_start(now, zone)
        if await expertise_service.has_snapshot(conn, shop_id, monday):
            return False
        at = expertise_service.week_instant(monday, zone)
        data = await expertise_service.expertise(conn, shop, at, now)
        if postgres:  # under the lock, in the same transaction
            return await expertise_service.store_snapshot(conn, shop_id, monday, data, now)
    async with transaction(engine) as conn:
        return await expertise_service.store_snapshot(conn, shop_id, monday, data, now)


async def _missing(engine: AsyncEngine, after: str, now: datetime) -> tuple[list[str], str | None]:
    """A page of shops (by id, after `after`) and those among them without this week's
    snapshot; the last id of the page, None at the end."""
    async with transaction(engine, read_only=True) as conn:
        shops = (
            await conn.execute(
                select(Shop.id, Shop.timezone).where(Shop.id > after).order_by(Shop.id).limit(PAGE)
            )
        ).all()
        if not shops:
            return [], None
        # The column mirrors the settings' zone; `snapshot_shop` decides on the settings.
        mondays = {s.id: expertise_service.week_start(now, s.timezone) for s in shops}
        # At most two Mondays across all zones (UTC-12 to UTC+14): the pairs are filtered here.
        present = set(
            (
                await conn.execute(
                    select(ExpertiseSnapshot.shop_id, ExpertiseSnapshot.week_start).where(
                        ExpertiseSnapshot.shop_id.in_(list(mondays)),
                        ExpertiseSnapshot.week_start.in_(set(mondays.values())),
                    )
                )
            ).all()
        )
    missing = [s.id for s in shops if (s.id, mondays[s.id]) not in present]
    return missing, shops[-1].id


async def snapshot_due(
    engine: AsyncEngine, now: datetime, stopping: asyncio.Event | None = None
) -> SnapshotStats:
    """Every shop's snapshot of its current week that is missing. A shop that fails is logged
    and left for the next tick; the others go on. `stopping` ends the run between two shops."""
    stats = SnapshotStats()
    after: str | None = ""
    while after is not None:
        missing, after = await _missing(engine, after, now)
        for shop_id in missing:
            if stopping is not None and stopping.is_set():
                return stats
            try:
                stored = await snapshot_shop(engine, shop_id, now)
            except Exception:
                log.exception("expertise snapshot of shop %s failed", shop_id)
                stats.failed += 1
                continue
            if stored:
                stats.stored += 1
            else:
                stats.skipped += 1
    if stats.stored or stats.failed:
        log.info("expertise snapshots: %d stored, %d failed", stats.stored, stats.failed)
    return stats


def jobs(engine: AsyncEngine, settings: Settings) -> list[PeriodicJob]:
    stopping = asyncio.Event()

    async def run() -> SnapshotStats:
        return await snapshot_due(engine, utcnow(), stopping)

    async def stop() -> None:
        stopping.set()

    return [PeriodicJob("expertise_snapshots", TICK, run, stop)]
