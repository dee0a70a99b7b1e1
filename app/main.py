"""The application factory and its lifespan: engine, dispatcher and scheduler."""

import inspect
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from app import counters, health, metrics, openapi
from app import scheduler as scheduler_module
from app.config import Settings, get_settings, startup_warnings
from app.dashboard.router import router as dashboard_router  # dashboard
from app.db import engine_for
from app.emailtemplates.router import router as templates_router
from app.errors import install_handlers
from app.hooks.router import router as hooks_router
from app.kpis.expertise_router import router as expertise_router  # kpis: expertise
from app.kpis.router import router as kpis_router  # kpis
from app.prestashop.router import router as prestashop_router
from app.prestashop.router import thin_router as prestashop_thin_router
from app.privacy.router import router as privacy_router
from app.requests import rescheduling
from app.requests import timeline as request_timeline
from app.requests.router import router as requests_router
from app.reviews import service as reviews_service
from app.reviews.pages import router as review_pages
from app.reviews.public_router import feed_router as public_feed_router  # public reviews
from app.reviews.public_router import router as public_reviews_router  # public reviews
from app.reviews.router import router as reviews_router
from app.shops import service as shops_service
from app.shops.router import router as shops_router
from app.suppressions.pages import router as unsubscribe_pages
from app.suppressions.router import router as suppressions_router
from app.tickets.hours_router import router as business_hours_router  # tickets: hours
from app.tickets.ratings import router as ticket_rating_pages  # tickets
from app.tickets.router import router as tickets_router  # tickets
from app.webhooks import inbox
from app.webhooks import service as webhooks_service
from app.webhooks.router import router as webhooks_router

log = logging.getLogger("relance")

# Domains that react to a shop's new settings, without shops importing them.
shops_service.SETTINGS_LISTENERS[:] = [rescheduling.reschedule_after_settings]
# What other domains add to a request's timeline.
request_timeline.SOURCES[:] = [webhooks_service.timeline_steps, reviews_service.timeline_steps]


# FastAPI's native OpenTelemetry (from 0.16x) looks up the global providers on every request:
# 3.6 % of the webhook path's CPU in bench.ingest. Relance exports its own /metrics and logs.
_NO_TELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters
    else {}
)


class Relance(FastAPI):
    """FastAPI, with the webhook inbox served ahead of its middleware and routing.

    The inbox takes every order-status change of every shop; a quarter of its CPU went to
    FastAPI's stack (`webhooks/inbox.py` says what it does instead, and the figures).
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        shop_id = inbox.shop_id_of(scope)
        if shop_id is None:
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        await inbox.serve(self.state, shop_id, scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for warning in startup_warnings(settings):
            log.warning(warning)
        engine = engine_for(settings)
        jobs = scheduler_module.collect(engine, settings)
        scheduler = scheduler_module.start(jobs) if settings.scheduler == "on" else None
        app.state.engine = engine
        app.state.scheduler_state = lambda: (
            "off" if scheduler is None else "running" if scheduler.running else "stopped"
        )
        try:
            yield
        finally:
            if scheduler is not None:
                await scheduler_module.stop(scheduler, jobs)
            await engine.dispose()

    app = Relance(
        title="Relance",
        version="1.0.0",
        summary="Review requests at the right moment, for PrestaShop shops.",
        lifespan=lifespan,
        **_NO_TELEMETRY,
    )
    app.state.settings = settings
    install_handlers(app)
    openapi.install(app)
    app.add_middleware(counters.MetricsMiddleware)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(webhooks_router)
    # The routes are tried in this order on every request (about 1 µs each): the busiest
    # paths first. A ticket's message matched after 150 others cost 0.18 ms of the 2 ms it
    # takes (bench.tickets_write).
    app.include_router(tickets_router)  # tickets
    app.include_router(shops_router)
    app.include_router(requests_router)
    app.include_router(reviews_router)
    app.include_router(review_pages)
    app.include_router(public_reviews_router)  # public reviews
    app.include_router(public_feed_router)  # public reviews
    app.include_router(suppressions_router)
    app.include_router(unsubscribe_pages)
    app.include_router(privacy_router)
    app.include_router(templates_router)
    app.include_router(hooks_router)
    app.include_router(prestashop_router)
    app.include_router(prestashop_thin_router)
    app.include_router(expertise_router)  # kpis: expertise
    app.include_router(business_hours_router)  # tickets: hours
    app.include_router(ticket_rating_pages)  # tickets
    app.include_router(kpis_router)  # kpis
    app.include_router(dashboard_router)  # dashboard
    return app
