"""How fast a worker may talk to a relay: a rate limit, and a concurrency that backs off.

Both live as long as the worker process, across ticks: a relay that said "slow down" a
second ago has not changed its mind because a new tick began.
"""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class RateLimiter:
    """At most `rate` messages a second, evenly spaced (None: no limit).

    Spacing instead of a burst bucket: relays count per second (SES's default quota is
    14/s), and ten messages leaving in the same millisecond are exactly what trips them.
    """

    def __init__(self, rate: float | None) -> None:
        self.interval = 0.0 if rate is None else 1.0 / rate
        self._next = 0.0

    async def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        slot = max(now, self._next)
        self._next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


class Throttle:
    """Up to `limit` conversations at once with one relay; halved when it asks to slow down.

    After a "421 too many connections" or a 4.x.x rate answer, the limit is halved (at least
    one) and stays there for `cool_off` seconds; then each message the relay accepts raises
    it by one, back up to the configured concurrency.
    """

    def __init__(self, limit: int, cool_off: float = 30.0) -> None:
        self.ceiling = limit
        self.limit = limit
        self.cool_off = cool_off
        self.slowed_until = 0.0
        self.slow_downs = 0
        self._active = 0
        self._changed = asyncio.Condition()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._changed:
            await self._changed.wait_for(lambda: self._active < self.limit)
            self._active += 1
        try:
            yield
        finally:
            async with self._changed:
                self._active -= 1
                self._changed.notify_all()

    def slow_down(self) -> None:
        self.slow_downs += 1
        self.limit = max(1, self.limit // 2)
        self.slowed_until = time.monotonic() + self.cool_off

    async def accepted(self) -> None:
        """A message went through: after the cool-off, open one more conversation."""
        if self.limit < self.ceiling and time.monotonic() >= self.slowed_until:
            async with self._changed:
                self.limit += 1
                self._changed.notify_all()
