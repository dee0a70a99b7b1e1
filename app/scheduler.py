"""The periodic jobs of every domain, woken by APScheduler (which only ticks: the database says
what is due). Each domain declares its jobs in its own `jobs.py`; this module collects them."""

from collections.abc import Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncEngine

from app.alerts import jobs as alert_jobs
from app.config import Settings
from app.db import utcnow
from app.dispatch import jobs as dispatch_jobs
from app.hooks import jobs as hook_jobs
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
)


def collect(engine: AsyncEngine, settings: Settings) -> list[PeriodicJob]:
    return [job for source in _SOURCES for job in source(engine, settings)]


def start(jobs: list[PeriodicJob]) -> AsyncIOScheduler:
    """Schedule every job (the first run at once); runs of one job never overlap."""
    scheduler = AsyncIOScheduler(timezone="UTC")
    for job in jobs:
        scheduler.add_job(
            job.run,
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
    # APScheduler 3 cancels running jobs on shutdown: pause it, let each running job finish
    # its unit of work and give back what it holds, then shut down.
    scheduler.pause()
    for job in jobs:
        await job.stop()
    scheduler.shutdown(wait=False)
