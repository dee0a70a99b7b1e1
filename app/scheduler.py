"""The periodic jobs of every domain, woken by APScheduler (which only ticks: the database says
what is due). Each domain declares its jobs in its own `jobs.py`; this module collects them."""

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncEngine

from app.alerts import jobs as alert_jobs
from app.config import Settings
from app.db import utcnow
from app.dispatch import jobs as dispatch_jobs
from app.hooks import jobs as hook_jobs
from app.kpis import jobs as kpis_jobs
from app.periodic import PeriodicJob
from app.prestashop import jobs as prestashop_jobs
from app.webhooks import jobs as webhook_jobs

# A new domain with periodic work adds its `jobs` function here.
_SOURCES: tuple[Callable[[AsyncEngine, Settings], list[PeriodicJob]], ...] = (
    dispatch_jobs.jobs,
    webhook_jobs.jobs,
    alert_jobs.jobs,
    hook_jobs.jobs,
    prestashop_jobs.jobs,
    kpis_jobs.jobs,
)


def collect(engine: AsyncEngine, settings: Settings) -> list[PeriodicJob]:
    return [job for source in _SOURCES for job in source(engine, settings)]


log = logging.getLogger("relance.scheduler")

STOP_WAIT = 30.0  # seconds a shutdown waits, in all, for the jobs under way to return

# Per scheduler, a lock per job held while it runs: `stop` waits on them, so no job is
# cancelled in the middle of a transaction (APScheduler 3 cancels running jobs on shutdown).
_RUNNING: "weakref.WeakKeyDictionary[AsyncIOScheduler, dict[str, asyncio.Lock]]" = (
    weakref.WeakKeyDictionary()
)


def _guarded(job: PeriodicJob, lock: asyncio.Lock) -> Callable[[], Awaitable[object]]:
    async def run() -> object:
        async with lock:
            return await job.run()

    return run


def start(jobs: list[PeriodicJob]) -> AsyncIOScheduler:
    """Schedule every job (the first run at once); runs of one job never overlap."""
    scheduler = AsyncIOScheduler(timezone="UTC")
    locks = _RUNNING[scheduler] = {job.name: asyncio.Lock() for job in jobs}
    for job in jobs:
        scheduler.add_job(
            _guarded(job, locks[job.name]),
            "interval",
            seconds=job.interval,
            id=job.name,
            max_instances=1,
            coalesce=True,
            next_run_time=None,
        )
    scheduler.start()
    for job in jobs:
        scheduler.modify_job(job.name, next_run_time=utcnow())
    return scheduler


async def stop(scheduler: AsyncIOScheduler, jobs: list[PeriodicJob]) -> None:
    # Pause (no new run starts), let each job end its current unit of work and give back what
    # it holds (`job.stop`), wait for every run under way to return, then shut down.
    scheduler.pause()
    for job in jobs:
        await job.stop()
    deadline = asyncio.get_running_loop().time() + STOP_WAIT
    for name, lock in _RUNNING.get(scheduler, {}).items():
        try:
            left = max(0.0, deadline - asyncio.get_running_loop().time())
            await asyncio.wait_for(lock.acquire(), left)
        except TimeoutError:
            log.warning("job %s still running after %.0f s: cancelled", name, STOP_WAIT)
            continue
        lock.release()
    scheduler.shutdown(wait=False)
