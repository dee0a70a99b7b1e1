"""What a domain's periodic job is, for the scheduler that collects them (app/scheduler.py)."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class PeriodicJob:
    """`run` every `interval` seconds, never two at once; `stop` lets a running one finish."""

    name: str
    interval: float
    run: Callable[[], Awaitable[object]]
    stop: Callable[[], Awaitable[None]]
