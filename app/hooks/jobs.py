"""The outgoing webhooks' periodic job: claim due deliveries, post them, record each outcome."""

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

import httpx
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.db import transaction, utcnow
from app.errors import is_database_unavailable
from app.hooks import queue, sender, service
from app.hooks.models import HookDelivery
from app.hooks.signing import headers
from app.hooks.vocabulary import HookStatus
from app.periodic import PeriodicJob, worker_name
from app.timeutil import parse_duration

log = logging.getLogger("relance.hooks")
BATCH = 20  # claimed and posted at once


@dataclass
class HookStats:
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    lost: int = 0  # the claim was taken over before the outcome was recorded


class HookSender:
    """Runs ticks. `client` is for tests; by default one client with timeouts, reused."""

    def __init__(
        self, engine: AsyncEngine, settings: Settings, client: httpx.AsyncClient | None = None
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.worker = worker_name()
        self._client = client

    async def tick(self, now: datetime | None = None) -> HookStats:
        """Post every due delivery (a pinned `now` is for tests: then nothing sleeps)."""
        stats = HookStats()
        client = self._client or sender.client()
        try:
            while True:
                at = now or utcnow()
                async with transaction(self.engine) as conn:
                    claimed = await queue.claim(
                        conn, self.worker, at, self.settings.claim_lease, BATCH
                    )
                if not claimed:
                    return stats
                # Outside any transaction: never hold one across HTTP.
                await asyncio.gather(*(self._deliver(client, c, now, stats) for c in claimed))
        finally:
            if self._client is None:
                await client.aclose()

    async def _deliver(
        self, client: httpx.AsyncClient, claimed: queue.Claimed, now: datetime | None,
        stats: HookStats,
    ) -> None:  # fmt: skip
        at = now or utcnow()
        body = claimed.body.encode()
        try:
            secrets = service.signing_secrets(
                self.settings.secret_key, claimed.secret, claimed.previous_secret,
                claimed.previous_secret_expires_at, at,
            )  # fmt: skip
        except ValueError as exc:  # RELANCE_SECRET_KEY changed without `relance rekey`
            answer = sender.Answer(None, 0, str(exc))
        else:
            signed = headers(secrets, claimed.message_id, int(at.timestamp()), body)
            answer = await sender.post(
                client, claimed.url, signed, body, self.settings.webhook_allow_private
            )
        if not answer.ok:
            log.info(
                "hook delivery %s: attempt %s failed (%s)",
                claimed.delivery_id, claimed.attempts, answer.status_code or "no answer",
            )  # fmt: skip
        try:
            async with transaction(self.engine) as conn:
                status = await queue.record(conn, claimed, self.worker, now or utcnow(), answer)
        except Exception as exc:
            if not is_database_unavailable(exc):
                raise
            # The lease runs out and the delivery is posted again: at least once, the
            # receiver dedupes on webhook-id.
            log.warning("hook delivery %s: outcome not recorded (%s)", claimed.delivery_id, exc)
            status = None
        if status is None:
            stats.lost += 1
            return
        if status is HookStatus.DELIVERED:
            stats.delivered += 1
        elif status is HookStatus.FAILED:
            stats.failed += 1
        else:
            stats.retried += 1


PURGE_BATCH = 5000


async def purge(engine: AsyncEngine, retention: str, now: datetime) -> int:
    """Delete the deliveries finished (delivered or failed) before `now - retention`, with their
    attempts: their bodies hold what they told (addresses, comments), and the log is for
    troubleshooting, not an archive. Repeating it is harmless, so no lock; how many went."""
    cutoff = now - parse_duration(retention).approx()
    old = (
        select(HookDelivery.id)
        .where(
            HookDelivery.status.in_([HookStatus.DELIVERED, HookStatus.FAILED]),
            HookDelivery.created_at < cutoff,
        )
        .limit(PURGE_BATCH)
        .scalar_subquery()
    )
    total = 0
    while True:  # short transactions, a batch each: the queue keeps working meanwhile
        async with transaction(engine) as conn:
            done = await conn.execute(delete(HookDelivery).where(HookDelivery.id.in_(old)))
        total += done.rowcount
        if done.rowcount < PURGE_BATCH:
            break
    if total:
        log.info("purged %d outgoing webhook deliveries older than %s", total, retention)
    return total


def jobs(engine: AsyncEngine, settings: Settings) -> list[PeriodicJob]:
    hook_sender = HookSender(engine, settings)

    async def run() -> HookStats:
        return await hook_sender.tick()

    async def run_purge() -> int:
        return await purge(engine, settings.event_retention, utcnow())

    async def stop() -> None:
        return None

    return [
        PeriodicJob("outgoing_webhooks", settings.dispatch_interval, run, stop),
        PeriodicJob("purge_outgoing_webhooks", 86400.0, run_purge, stop),
    ]
