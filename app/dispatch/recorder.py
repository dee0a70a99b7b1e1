"""Committing outcomes: through a database outage while the lease lasts, and sent e-mails of
all senders together (group commit).

A sender waits for the commit that holds its outcome before it takes its next message, so a
crash can re-send only messages whose outcome is not committed: at most one per sender.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db import transaction
from app.dispatch import outcomes
from app.dispatch.outcomes import Sent
from app.errors import is_database_unavailable

log = logging.getLogger("relance.dispatch")

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
