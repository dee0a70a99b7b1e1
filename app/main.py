"""The application factory and its lifespan: engine, dispatcher and scheduler."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from fastapi import FastAPI

from app import health, metrics, openapi
from app.config import Settings, get_settings
from app.db import engine_for, utcnow
from app.dispatch.jobs import Dispatcher
from app.errors import install_handlers
from app.requests.router import router as requests_router
from app.shops.router import router as shops_router
from app.webhooks.router import router as webhooks_router

log = logging.getLogger("relance")


def start_scheduler(dispatcher: Dispatcher, interval: float) -> AsyncIOScheduler:
    """APScheduler only ticks; the database says what is due. Ticks never overlap."""
    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.add_job(
        dispatcher.tick,
        "interval",
        seconds=interval,
        id="dispatch",
        max_instances=1,
        coalesce=True,
        next_run_time=None,
    )
    scheduler.start()
    scheduler.modify_job("dispatch", next_run_time=utcnow())
    return scheduler


async def stop_scheduler(scheduler: AsyncIOScheduler, dispatcher: Dispatcher) -> None:
    # APScheduler 3 cancels running jobs on shutdown: pause it, let the running tick finish
    # its current message and give back its other claims, then shut down.
    scheduler.pause()
    await dispatcher.stop()
    scheduler.shutdown(wait=False)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = engine_for(settings)
        dispatcher = Dispatcher(engine, settings)
        scheduler = None
        if settings.scheduler == "on":
            scheduler = start_scheduler(dispatcher, settings.dispatch_interval)
        app.state.engine = engine
        app.state.dispatcher = dispatcher
        app.state.scheduler_state = lambda: (
            "off" if scheduler is None else "running" if scheduler.running else "stopped"
        )
        try:
            yield
        finally:
            if scheduler is not None:
                await stop_scheduler(scheduler, dispatcher)
            await engine.dispose()

    app = FastAPI(
        title="Relance",
        version="1.0.0",
        summary="Review requests at the right moment, for PrestaShop shops.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_handlers(app)
    openapi.install(app)
    app.add_middleware(metrics.MetricsMiddleware)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(webhooks_router)
    app.include_router(shops_router)
    app.include_router(requests_router)
    return app
