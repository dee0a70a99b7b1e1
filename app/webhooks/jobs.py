"""The inbox's periodic job: raw webhook bodies are purged after `RELANCE_EVENT_RETENTION`.

The facts derived from them (orders, their history, requests) stay; only the payload text,
which holds names and addresses, goes. Once cluster-wide on PostgreSQL (an advisory lock);
repeating it is harmless anyway.
"""

import logging
from datetime import datetime

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.db import transaction, utcnow
from app.periodic import PeriodicJob
from app.timeutil import parse_duration
from app.webhooks.models import WebhookEvent

log = logging.getLogger("relance.webhooks")

DAY = 86400.0
BATCH = 5000
_LOCK_KEY = 0x72656C616E6365  # "relance": this job's advisory lock
PURGED = ""


async def purge_payloads(engine: AsyncEngine, retention: str, now: datetime) -> int:
    """Empty the payload of every event received before `now - retention`; how many."""
    cutoff = now - parse_duration(retention).approx()
    old = (
        select(WebhookEvent.id)
        .where(WebhookEvent.received_at < cutoff, WebhookEvent.payload != PURGED)
        .limit(BATCH)
        .scalar_subquery()
    )
    total = 0
    while True:
        # Short transactions, a batch each: the inbox keeps writing meanwhile.
        async with transaction(engine) as conn:
            if conn.dialect.name == "postgresql":
                locked = await conn.scalar(text(f"SELECT pg_try_advisory_xact_lock({_LOCK_KEY})"))
                if not locked:
                    return total  # another process is purging
            done = await conn.execute(
                update(WebhookEvent).where(WebhookEvent.id.in_(old)).values(payload=PURGED)
            )
        total += done.rowcount
        if done.rowcount < BATCH:
            break
    if total:
        log.info("purged the raw bodies of %d webhook events older than %s", total, retention)
    return total


def jobs(engine: AsyncEngine, settings: Settings) -> list[PeriodicJob]:
    async def run() -> int:
        return await purge_payloads(engine, settings.event_retention, utcnow())

    async def stop() -> None:
        return None

    return [PeriodicJob("purge_event_bodies", DAY, run, stop)]
