"""What a domain's periodic job is, for the scheduler that collects them (app/scheduler.py)."""

import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class PeriodicJob:
    """`run` every `interval` seconds, never two at once; `stop` lets a running one finish."""

    name: str
    interval: float
    run: Callable[[], Awaitable[object]]
    stop: Callable[[], Awaitable[None]]


def worker_name() -> str:
    """Who holds a claim: host, process and a random part (stored in `claimed_by`)."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
