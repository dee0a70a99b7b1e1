"""Group commit for the webhook inbox: webhooks that arrive together share one transaction.

Each webhook is still answered only after the COMMIT that holds its event and the scheduling
decision it caused (DESIGN, principle 2). One task per engine runs the batches one after
another: while one commits, the next collects, so there is no timer and no added wait when
webhooks come one at a time. A batch is tried with set-based statements first; if the
database refuses any of it, it is rolled back and taken again one webhook per savepoint, so
one bad webhook fails alone. When the database cannot be reached, every webhook of the batch,
and every one queued behind it, is answered 503: none of them was recorded.
"""

import asyncio
import logging
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db import transaction, utcnow
from app.errors import is_database_unavailable
from app.webhooks.intake import Answer, Arrival, receive_one_by_one, receive_together

log = logging.getLogger("relance.webhooks")

# Webhooks per transaction at most: bounds the time a batch holds its locks, and the size
# of its statements.
MAX_BATCH = 128
# Transactions at once (PostgreSQL): one sending its statements, the others committing.
MAX_TRANSACTIONS = 3

Receive = Callable[[AsyncConnection, Sequence[Arrival], str, datetime], Awaitable[list[Answer]]]


@dataclass(frozen=True)
class _Waiting:
    arrival: Arrival
    answer: asyncio.Future[Answer]


class GroupCommitter:
    """The queue of one engine's webhooks and the task that commits them in batches."""

    def __init__(self, engine: AsyncEngine, secret_key: str) -> None:
        self._engine = engine
        self._secret_key = secret_key
        self._queue: deque[_Waiting] = deque()
        self._task: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        # What tests and operators can read: how many batches were taken, and how full.
        self.batches = 0
        self.webhooks = 0
        self.largest = 0
        self.fallbacks = 0  # batches taken again one webhook per savepoint

    @property
    def waiting(self) -> int:
        """Webhooks queued for the next batch (not those of the batches under way)."""
        return len(self._queue)

    @property
    def in_flight(self) -> int:
        """Batches under way: sending their statements, or committing."""
        return len(self._in_flight)

    async def submit(self, arrival: Arrival) -> Answer:
        """Queue a webhook; its answer comes once its batch is committed (or has failed)."""
        answer: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._queue.append(_Waiting(arrival, answer))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        return await answer

    async def _run(self) -> None:
        while self._queue:
            batch: list[_Waiting] = []
            while self._queue and len(batch) < MAX_BATCH:
                waiting = self._queue.popleft()
                if not waiting.answer.done():  # done: its request was cancelled meanwhile
                    batch.append(waiting)
            if not batch:
                continue
            self.batches += 1
            self.webhooks += len(batch)
            self.largest = max(self.largest, len(batch))
            committing: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            task = asyncio.create_task(self._commit(batch, committing))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
            if self._engine.dialect.name != "postgresql":
                await task  # SQLite has one writer: the next batch would only wait for the lock
                continue
            # The next batch starts once this one has sent its COMMIT: from then on this one
            # holds its row locks but waits for none, so the next can wait for it (an order's
            # next event then sees its previous one) but never the other way round.
            await committing
            while len(self._in_flight) >= MAX_TRANSACTIONS:
                await asyncio.wait(self._in_flight, return_when=asyncio.FIRST_COMPLETED)

    async def _commit(self, batch: list[_Waiting], committing: asyncio.Future[None]) -> None:
        arrivals = [w.arrival for w in batch]
        try:
            try:
                answers = await self._transaction(receive_together, arrivals, committing)
            except Exception as exc:
                if is_database_unavailable(exc) or committing.done():
                    raise  # unreachable, or the COMMIT itself failed: every webhook fails
                name = type(exc).__name__
                log.info("a batch of %d webhooks failed (%s): one by one", len(batch), name)
                self.fallbacks += 1
                answers = await self._transaction(receive_one_by_one, arrivals, committing)
        except Exception as exc:
            failed = list(batch)
            if is_database_unavailable(exc):
                # Queued behind a batch the database did not answer: they would wait for the
                # same timeouts again. Nothing of theirs was recorded, so 503 is exact.
                failed += self._queue
                self._queue.clear()
            for waiting in failed:
                if not waiting.answer.done():
                    waiting.answer.set_exception(exc)
            return
        except BaseException:
            for waiting in batch:
                waiting.answer.cancel()
            raise
        finally:
            if not committing.done():
                committing.set_result(None)
        for waiting, answer in zip(batch, answers, strict=True):
            if not waiting.answer.done():
                waiting.answer.set_result(answer)

    async def _transaction(
        self, receive: Receive, arrivals: list[Arrival], committing: asyncio.Future[None]
    ) -> list[Answer]:
        async with transaction(self._engine) as conn:
            answers = await receive(conn, arrivals, self._secret_key, utcnow())
            if not committing.done():
                committing.set_result(None)  # leaving the block commits
            return answers


_COMMITTERS: weakref.WeakKeyDictionary[AsyncEngine, GroupCommitter] = weakref.WeakKeyDictionary()


def committer(engine: AsyncEngine, secret_key: str) -> GroupCommitter:
    """The group committer of this engine (made on first use: it lives as long as the engine)."""
    found = _COMMITTERS.get(engine)
    if found is None:
        found = _COMMITTERS[engine] = GroupCommitter(engine, secret_key)
    return found
