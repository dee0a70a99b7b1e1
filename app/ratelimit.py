"""A bounded in-memory rate limiter (per process): a sliding window of hits per key.

Each replica counts on its own, so N replicas let through up to N times the limit; that still
stops a flood from one address or against one link, which is what the customer pages need.
"""

import time
from collections import OrderedDict, deque


class RateLimiter:
    """At most `limit` hits per `window` seconds for each key; the oldest keys are forgotten
    first once `max_keys` are tracked, so memory stays bounded whatever the traffic."""

    def __init__(self, limit: int, window: float, max_keys: int = 10_000) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()

    def allow(self, key: str, now: float | None = None) -> bool:
        """Count a hit for `key`; False when it is over the limit (the hit is not counted)."""
        now = time.monotonic() if now is None else now
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque()
            if len(self._hits) > self.max_keys:
                self._hits.popitem(last=False)
        else:
            self._hits.move_to_end(key)
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            return False
        hits.append(now)
        return True
