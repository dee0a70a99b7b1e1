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
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import REGISTRY
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from app.config import Settings
from app.db import transaction, utcnow
from app.errors import Unauthorized
from app.requests.models import Delivery
from app.shops.models import Shop

log = logging.getLogger("relance.metrics")

SCRAPE_TIMEOUT = 2.0
OVERDUE_AFTER = timedelta(minutes=5)


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
