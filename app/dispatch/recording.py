"""What became of each claimed e-mail, recorded: sent, skipped, failed, retried, released,
or the shop paused, each retried through a database outage while the claim's lease lasts.

The sent ones of all senders are committed together (`SentRecorder`); a sender waits for the
commit that holds its outcome before it takes its next message, so a crash can re-send only
messages whose outcome is not committed: at most one per sender. Every other outcome is a
transaction of its own.
"""

import asyncio
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app import counters
from app.alerts import service as alerts
from app.config import Settings
from app.db import transaction, utcnow
from app.dispatch import outcomes
from app.dispatch.outcomes import Sent
from app.dispatch.service import Claim
from app.errors import is_database_unavailable
from app.requests.vocabulary import Reason, Status
from app.shops import service as shops

log = logging.getLogger("relance.dispatch")

MAX_BACKOFF = timedelta(hours=6)
RETRY_FIRST = 0.5  # seconds; doubles up to RETRY_MAX while the lease lasts
RETRY_MAX = 5.0

T = TypeVar("T")


class DatabaseLost(Exception):
    """An outcome could not be recorded before the claim's lease ran out."""


async def commit_within(
    engine: AsyncEngine,
    work: Callable[[AsyncConnection], Awaitable[T]],
    deadline: float,
    what: str,
) -> T:
    """Run `work` in a transaction; while the database is unavailable, try again until the
    monotonic `deadline` (the lease's end), so a message handed to SMTP is recorded once the
    database is back instead of being sent again by whoever takes the lease over."""
    pause = RETRY_FIRST
    while True:
        try:
            async with transaction(engine) as conn:
                return await work(conn)
        except Exception as exc:
            if not is_database_unavailable(exc):
                raise
            if time.monotonic() + pause >= deadline:
                log.error(
                    "%s: outcome not recorded, database unavailable for the whole lease (%s)",
                    what,
                    type(exc).__name__,
                )
                raise DatabaseLost from exc
            log.warning(
                "%s: database unavailable (%s); recording again in %.1f s",
                what,
                type(exc).__name__,
                pause,
            )
            await asyncio.sleep(pause)
            pause = min(pause * 2, RETRY_MAX)


class SentRecorder:
    """Records the sent e-mails of all senders in shared transactions.

    Each `record` joins the next commit: while one commit runs, the next group gathers, so
    ten senders cost one transaction instead of ten, and none waits longer than one commit.
    """

    def __init__(self, engine: AsyncEngine, worker: str) -> None:
        self.engine = engine
        self.worker = worker
        self._pending: list[tuple[Sent, float, asyncio.Future[bool]]] = []
        self._task: asyncio.Task[None] | None = None

    async def record(self, sent: Sent, deadline: float) -> bool:
        """True when recorded; False when the claim was no longer ours. DatabaseLost when the
        database stayed unavailable until `deadline` (monotonic)."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((sent, deadline, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._commit_all())
        return await future

    async def _commit_all(self) -> None:
        while self._pending:
            group, self._pending = self._pending, []
            items = [sent for sent, _, _ in group]
            deadline = min(deadline for _, deadline, _ in group)
            ids = ", ".join(str(s.claim.delivery_id) for s in items[:5])
            try:
                recorded = await commit_within(
                    self.engine,
                    partial(outcomes.mark_sent, sent=items, worker=self.worker),
                    deadline,
                    f"deliveries {ids}{'…' if len(items) > 5 else ''}",
                )
            except Exception as exc:
                for _, _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for sent, _, future in group:
                if not future.done():
                    future.set_result(sent.claim.delivery_id in recorded)


@dataclass
class TickStats:
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    retried: int = 0
    released: int = 0
    lost: int = 0
    throttled: int = 0  # "slow down" answers from a relay (the message went back in line)
    paused_shops: set[str] = field(default_factory=set)


class Outcomes:
    """Records the outcomes of one worker's claims, counting them in a tick's `TickStats`."""

    def __init__(
        self, engine: AsyncEngine, worker: str, settings: Settings, address_key: bytes
    ) -> None:
        self.engine = engine
        self.worker = worker
        self.settings = settings
        self.address_key = address_key
        self.sent = SentRecorder(engine, worker)

    async def final(
        self,
        claim: Claim,
        now: datetime,
        stats: TickStats,
        status: Status,
        reason: Reason,
        error: str | None = None,
    ) -> None:
        if await self.record(outcomes.mark_final, claim, now, status, reason, error):
            counters.delivery_finished(status, reason)
        if status is Status.SKIPPED:
            stats.skipped += 1
        else:
            stats.failed += 1

    async def bounced(self, claim: Claim, now: datetime, stats: TickStats, error: str) -> None:
        """A permanent refusal at RCPT: failed, and never written to again (`hard_bounce`)."""
        if await self.record(outcomes.mark_bounced, claim, now, error, self.address_key):
            counters.delivery_finished(Status.FAILED, Reason.RECIPIENT_REJECTED)
        stats.failed += 1

    async def internal_error(
        self, claim: Claim, now: datetime, exc: Exception, stats: TickStats
    ) -> None:
        # The class and a traceback for the operator, not the message: it may hold personal
        # data. The merchant reads the message in `last_error`.
        log.error(
            "delivery %s: internal error %s\n%s",
            claim.delivery_id,
            type(exc).__name__,
            "".join(traceback.format_tb(exc.__traceback__)),
        )
        await self.retry(claim, now, Reason.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}", stats)

    async def retry(
        self, claim: Claim, now: datetime, reason: Reason, error: str, stats: TickStats
    ) -> None:
        """Try again later with exponential back-off; after the attempt limit, fail it."""
        error = error[:500]
        if claim.attempts >= self.settings.max_attempts:
            await self.final(claim, now, stats, Status.FAILED, reason, error)
            return
        backoff = min(
            timedelta(seconds=self.settings.retry_base * 2 ** (claim.attempts - 1)), MAX_BACKOFF
        )
        await self.record(outcomes.retry_later, claim, now, now + backoff, error)
        stats.retried += 1

    async def record(
        self, fn: Callable[..., Awaitable[bool]], claim: Claim, now: datetime, *args: object
    ) -> bool:
        """Commit one outcome, through a database outage while the lease lasts."""
        done = await commit_within(
            self.engine,
            lambda conn: fn(conn, claim, self.worker, now, *args),
            self.deadline(claim, now),
            f"delivery {claim.delivery_id}",
        )
        if not done:
            log.warning(
                "delivery %s: claim lost before its outcome was recorded", claim.delivery_id
            )
        return done

    @staticmethod
    def deadline(claim: Claim, now: datetime) -> float:
        """The end of the claim's lease, on the monotonic clock."""
        return time.monotonic() + (claim.lease_until - now).total_seconds()

    async def release(self, claims: list[Claim], now: datetime, stats: TickStats) -> bool:
        """Give the claims back; False when the database is unavailable (they stay claimed)."""
        if not claims:
            return True
        try:
            async with transaction(self.engine) as conn:
                await outcomes.release(conn, claims, self.worker, now)
        except Exception as exc:
            if not is_database_unavailable(exc):
                raise
            log.warning(
                "dispatch: %d claims not released (%s); they return when their lease expires",
                len(claims),
                type(exc).__name__,
            )
            return False
        stats.released += len(claims)
        return True

    async def pause(self, claim: Claim, now: datetime, error: str, stats: TickStats) -> None:
        log.error("shop %s: sending paused: %s", claim.shop_id, error)
        async with transaction(self.engine) as conn:
            paused = await shops.pause_sending(conn, claim.shop_id, error, now)
            await outcomes.release(conn, [claim], self.worker, now)
            settings = claim.settings
            if paused and settings.notification_email:
                await alerts.sending_paused(
                    conn,
                    shop_id=claim.shop_id,
                    shop_name=claim.shop_name,
                    to=settings.notification_email,
                    language=settings.default_language,
                    reason=error,
                    now=utcnow(),  # due at once, whatever clock the tick runs on
                )
        stats.paused_shops.add(claim.shop_id)
