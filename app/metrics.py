"""`/metrics` in the Prometheus text format: counters fed as things happen, gauges read per scrape.

Counters and the latency histogram are module-level singletons (registered once per process,
whatever the number of `create_app` calls). Gauges that describe the database (what is due,
the dispatcher's lag, the pool) are computed at scrape time by whichever process answers, with
a short timeout, so a scrape answers even when the database does not.

With `PROMETHEUS_MULTIPROC_DIR` set before the process starts, prometheus-client keeps the
counters in files of that directory and a scrape serves the sum over every process using it.
"""

import asyncio
import hmac
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings
from app.db import transaction, utcnow
from app.errors import Unauthorized
from app.requests.models import Delivery
from app.shops.models import Shop

log = logging.getLogger("relance.metrics")

SCRAPE_TIMEOUT = 2.0
OVERDUE_AFTER = timedelta(minutes=5)
WEBHOOK_ROUTE = "/webhooks/prestashop/{shop_id}"
UNMATCHED = "<unmatched>"
_OUTCOME_KEY = "relance.webhook_outcome"

WEBHOOKS = Counter(
    "relance_webhooks_total",
    "Webhooks answered, by outcome (accepted, duplicate, ignored, pong; rejected for a 4xx, "
    "failed for a 5xx) and status code.",
    ["outcome", "code"],
)
DELIVERIES = Counter(
    "relance_deliveries_total",
    "Deliveries (e-mails) that reached a final status, by status and reason.",
    ["status", "reason"],
)
SMTP_ERRORS = Counter(
    "relance_smtp_errors_total",
    "SMTP errors by class: transient, recipient_rejected, permanent, internal, "
    "smtputf8_unsupported.",
    ["kind"],
)
REQUESTS = Counter(
    "relance_http_requests_total",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "code"],
)
LATENCY = Histogram(
    "relance_http_request_duration_seconds",
    "Time from the request's arrival to the end of its response, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


def webhook_answered(outcome: str, status_code: int) -> None:
    WEBHOOKS.labels(outcome, str(status_code)).inc()


def delivery_finished(status: str, reason: str | None) -> None:
    DELIVERIES.labels(status, reason or "").inc()


def smtp_error(kind: str) -> None:
    SMTP_ERRORS.labels(kind).inc()


def note_webhook_outcome(request: Request, outcome: str) -> None:
    """Tell the middleware what a webhook's 2xx answer was; it counts once the status is known.

    Counting in the middleware (not the route) sees every answer exactly once, including the
    errors raised by dependencies and exception handlers and a commit that fails after the
    route chose its answer (then the client gets a 503, and that is what is counted).
    """
    request.scope[_OUTCOME_KEY] = outcome


class MetricsMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware): a clock read and two label look-ups per request.

    Labels use the route template, never the raw path, so their number stays bounded; paths
    that match no route share one label.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            _observe(scope, status, time.perf_counter() - start)


def _observe(scope: Scope, status: int, elapsed: float) -> None:
    route = scope.get("route")
    template = getattr(route, "path", None) or UNMATCHED
    method = scope["method"]
    LATENCY.labels(method, template).observe(elapsed)
    REQUESTS.labels(method, template, str(status)).inc()
    if template == WEBHOOK_ROUTE and method == "POST":
        if status < 400:
            outcome = scope.get(_OUTCOME_KEY, "unknown")
        else:
            outcome = "rejected" if status < 500 else "failed"
        webhook_answered(outcome, status)


@dataclass
class DatabaseGauges:
    due: int
    overdue: int
    lag_seconds: float
    sending: int
    lease_expired: int
    paused_shops: int


async def read_database(
    engine: AsyncEngine, now: datetime, overdue_after: timedelta
) -> DatabaseGauges:
    """The scrape-time gauges, each from a partial index (never a scan of all deliveries).

    `ix_deliveries_due` (due_at, status 'scheduled') answers the due count, the overdue count
    and the oldest due delivery of a shop that is not paused; `ix_deliveries_lease`
    (claim_expires_at, status 'sending') answers the two counts of claimed deliveries.
    """
    overdue_before = now - overdue_after
    due_stmt = select(func.count(), func.count().filter(Delivery.due_at <= overdue_before)).where(
        Delivery.status == "scheduled", Delivery.due_at <= now
    )
    paused = select(Shop.id).where(Shop.sending_paused_at.is_not(None))
    oldest_stmt = (
        select(Delivery.due_at)
        .where(
            Delivery.status == "scheduled",
            Delivery.due_at <= now,
            Delivery.shop_id.not_in(paused),
        )
        .order_by(Delivery.due_at)
        .limit(1)
    )
    sending_stmt = select(
        func.count(), func.count().filter(Delivery.claim_expires_at <= now)
    ).where(Delivery.status == "sending")
    paused_stmt = select(func.count()).select_from(paused.subquery())
    async with transaction(engine, read_only=True) as conn:
        due, overdue = (await conn.execute(due_stmt)).one()
        oldest = await conn.scalar(oldest_stmt)
        sending, lease_expired = (await conn.execute(sending_stmt)).one()
        paused_count = await conn.scalar(paused_stmt) or 0
    lag = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
    return DatabaseGauges(due, overdue, lag, sending, lease_expired, paused_count)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def database_families(gauges: DatabaseGauges | None, overdue_after: timedelta) -> list[Metric]:
    """`relance_database_up`, and the delivery gauges when the database answered."""
    families: list[Metric] = [
        _gauge(
            "relance_database_up",
            "1 when the database answered this scrape within its timeout, else 0.",
            0 if gauges is None else 1,
        )
    ]
    if gauges is None:
        return families
    minutes = int(overdue_after.total_seconds() // 60)
    families += [
        _gauge(
            "relance_deliveries_due",
            "Scheduled deliveries whose due time has come (not yet claimed).",
            gauges.due,
        ),
        _gauge(
            "relance_deliveries_overdue",
            f"Scheduled deliveries due for more than {minutes} minutes (not yet claimed).",
            gauges.overdue,
        ),
        _gauge(
            "relance_dispatcher_lag_seconds",
            "Age of the oldest due delivery not yet claimed, shops with paused sending "
            "excluded; 0 when none.",
            gauges.lag_seconds,
        ),
        _gauge(
            "relance_deliveries_sending",
            "Deliveries claimed by a worker (in an SMTP conversation or about to be).",
            gauges.sending,
        ),
        _gauge(
            "relance_deliveries_lease_expired",
            "Claimed deliveries whose lease has run out (their worker died or hangs); the next "
            "tick takes them over.",
            gauges.lease_expired,
        ),
        _gauge(
            "relance_shops_sending_paused", "Shops whose sending is paused.", gauges.paused_shops
        ),
    ]
    return families


def pool_families(engine: AsyncEngine) -> list[Metric]:
    """The connection pool of the process that answers the scrape."""
    pool = engine.pool
    if not isinstance(pool, QueuePool):
        return []
    return [
        _gauge("relance_db_pool_size", "Connections the pool keeps open.", pool.size()),
        _gauge(
            "relance_db_pool_max",
            "Connections the pool may open at most (size plus overflow).",
            pool.size() + max(0, pool._max_overflow),
        ),
        _gauge("relance_db_pool_checked_out", "Connections in use right now.", pool.checkedout()),
        _gauge(
            "relance_db_pool_overflow",
            "Connections open beyond the pool's size right now.",
            max(0, pool.overflow()),
        ),
    ]


class _Scrape(Collector):
    """One scrape: the counters (of this process, or of all of them) and the gauges read now."""

    def __init__(self, source: Collector, extra: list[Metric]) -> None:
        self.source = source
        self.extra = extra

    def collect(self) -> Iterable[Metric]:
        yield from self.source.collect()
        yield from self.extra


def _counters_source() -> Collector:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


def overdue_threshold(dispatch_interval: float) -> timedelta:
    """Five minutes, or two dispatcher intervals when that is longer (a due e-mail waits up to
    one interval for its tick in normal operation)."""
    return max(OVERDUE_AFTER, timedelta(seconds=2 * dispatch_interval))


def _authorize(request: Request) -> None:
    settings: Settings = request.app.state.settings
    token = settings.metrics_token
    if token is None:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.encode(), given.strip().encode()
    ):
        raise Unauthorized("A valid bearer token is required: set by RELANCE_METRICS_TOKEN.")


router = APIRouter(tags=["operations"])


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    _authorize(request)
    state = request.app.state
    engine: AsyncEngine = state.engine
    overdue_after = overdue_threshold(state.settings.dispatch_interval)
    gauges: DatabaseGauges | None
    try:
        gauges = await asyncio.wait_for(
            read_database(engine, utcnow(), overdue_after), SCRAPE_TIMEOUT
        )
    except (TimeoutError, DBAPIError, OSError) as exc:
        log.warning("metrics: database gauges unavailable: %s", type(exc).__name__)
        gauges = None
    extra = database_families(gauges, overdue_after) + pool_families(engine)
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    body = encoder(_Scrape(_counters_source(), extra))
    return Response(body, media_type=content_type)
