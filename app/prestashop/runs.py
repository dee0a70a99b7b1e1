"""Backfill and reconciliation runs: read the shop outside any transaction, then apply.

A backfill applies everything it read in one transaction (all or nothing; rolled back for a
dry run). Reconciliation applies page by page, each page with the cursor it moves, so a run
cut short resumes where its last committed page ended. Both then record the customer-service
threads of the same window as tickets (`threads.py`), chunk by chunk; the cursor never moves
past a thread not yet recorded.
"""

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db import transaction
from app.errors import NotFound
from app.prestashop import service, threads
from app.prestashop.client import Connector, WebserviceError
from app.prestashop.importing import PAGE, Prepared, apply, catalogue, read_orders, read_page
from app.prestashop.models import PrestashopWebservice
from app.prestashop.threads import ThreadReport
from app.prestashop.vocabulary import RunStatus
from app.shops import service as shops
from app.shops.service import ShopAuth

log = logging.getLogger("relance.prestashop")

MAX_BACKFILL_ORDERS = 5000  # one request's worth; a longer period is refused, naming `since`
FIRST_LOOKBACK = timedelta(days=1)  # where reconciliation starts for a new Webservice
# Orders changed this recently are left to their webhook, which is probably on its way.
GRACE = timedelta(minutes=5)
MAX_PAGES = 20  # per shop and run; the cursor carries the rest to the next run
RECONCILE_EVERY = timedelta(minutes=15)
LEASE = timedelta(minutes=10)  # a run's hold on its shop; far longer than MAX_PAGES take


class TooManyOrders(Exception):
    """More orders in the period than one backfill takes."""


@dataclass
class Report:
    since: datetime
    until: datetime
    dry_run: bool
    orders: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    threads: ThreadReport = field(default_factory=ThreadReport)


async def _shop(
    engine: AsyncEngine, shop_id: str, secret_key: str, now: datetime
) -> tuple[ShopAuth, service.Credentials, datetime | None]:
    async with transaction(engine, read_only=True) as conn:
        auth = await shops.webhook_auth(conn, shop_id, secret_key, now)
        if auth is None:
            raise NotFound(f"No shop {shop_id!r}.")
        credentials = await service.credentials(conn, shop_id, secret_key)
        cursor = await conn.scalar(
            select(PrestashopWebservice.reconciled_until).where(
                PrestashopWebservice.shop_id == shop_id
            )
        )
    return auth, credentials, cursor


def _latest(prepared: list[Prepared]) -> list[Prepared]:
    # An order changed while being paged can be read twice: its last reading counts.
    return list({p.order_id: p for p in prepared}.values())


async def backfill(
    engine: AsyncEngine,
    shop_id: str,
    period: timedelta,
    dry_run: bool,
    *,
    secret_key: str,
    now: datetime,
    connector: Connector,
) -> Report:
    """Import the orders updated in the last `period`; counts by outcome.

    Raises `NotFound`, `ValueError` (the key no longer decrypts), `WebserviceError` or
    `TooManyOrders` before anything is written.
    """
    auth, credentials, _ = await _shop(engine, shop_id, secret_key, now)
    report = Report(now - period, now, dry_run)
    prepared: list[Prepared] = []
    tz = auth.settings.timezone
    async with connector.open(credentials.url, credentials.key) as ws:
        known = await catalogue(ws)
        while True:
            page = await read_page(ws, known, tz, report.since, now, len(prepared))
            prepared += page
            if len(prepared) > MAX_BACKFILL_ORDERS:
                raise TooManyOrders(f"more than {MAX_BACKFILL_ORDERS} orders in the period")
            if len(page) < PAGE:
                break
    prepared = _latest(prepared)
    async with engine.connect() as conn:
        # Explicit, so a dry run can roll back exactly what a real one would have committed.
        trans = await conn.begin()
        try:
            report.outcomes = await apply(conn, auth, prepared, now)
        except BaseException:
            await trans.rollback()
            raise
        await (trans.rollback() if dry_run else trans.commit())
    report.orders = len(prepared)
    async with connector.open(credentials.url, credentials.key) as ws:
        report.threads = await threads.import_threads(
            engine, ws, auth, known.languages, report.since, now, now=now, dry_run=dry_run
        )
    return report


async def enrich(
    engine: AsyncEngine,
    shop_id: str,
    order_id: int,
    *,
    secret_key: str,
    now: datetime,
    connector: Connector,
) -> str:
    """A thin event named this order: read it from the Webservice and apply it like a
    webhook; its outcome (`not_found` when the shop does not have it). Raises as `backfill`."""
    auth, credentials, _ = await _shop(engine, shop_id, secret_key, now)
    async with connector.open(credentials.url, credentials.key) as ws:
        known = await catalogue(ws)
        prepared = await read_orders(ws, known, auth.settings.timezone, [order_id])
    if not prepared:
        return "not_found"
    async with transaction(engine) as conn:
        outcomes = await apply(conn, auth, _latest(prepared), now)
    [(outcome, _)] = outcomes.items()
    return outcome


async def claim_due(engine: AsyncEngine, now: datetime, limit: int) -> list[str]:
    """Shops whose reconciliation is due, each leased to this run (no other replica takes it
    until the lease ends): one run per shop, cluster-wide, on either database."""
    free = or_(
        PrestashopWebservice.claimed_until.is_(None), PrestashopWebservice.claimed_until < now
    )
    async with transaction(engine) as conn:
        due = (
            await conn.scalars(
                select(PrestashopWebservice.shop_id)
                .where(PrestashopWebservice.next_run_at <= now, free)
                .order_by(PrestashopWebservice.next_run_at)
                .limit(limit)
            )
        ).all()
        claimed = []
        for shop_id in due:
            # Conditional: of two replicas racing for a shop, the second updates nothing.
            done = await conn.execute(
                update(PrestashopWebservice)
                .where(PrestashopWebservice.shop_id == shop_id, free)
                .values(claimed_until=now + LEASE)
            )
            if done.rowcount:
                claimed.append(shop_id)
    return claimed


def _joint_cursor(
    found: ThreadReport,
    cursor: datetime | None,
    since: datetime,
    until: datetime,
    *,
    orders_done: bool,
) -> datetime | None:
    """Where the cursor goes once threads are read too, if it moves: back to the threads not
    yet recorded (their orders are then re-read, as up to date), or, both read through, on to
    the newest thread seen. None: where orders left it."""
    if not found.permitted:
        return None
    if not found.complete:
        held = threads.progress(found, since, until)
        return held if cursor is None or held < cursor else None
    if orders_done and found.newest is not None and (cursor is None or found.newest > cursor):
        return found.newest
    return None


async def _move(conn: AsyncConnection, shop_id: str, cursor: datetime) -> None:
    await conn.execute(
        update(PrestashopWebservice)
        .where(PrestashopWebservice.shop_id == shop_id)
        .values(reconciled_until=cursor)
    )


async def reconcile(
    engine: AsyncEngine, shop_id: str, *, secret_key: str, now: datetime, connector: Connector
) -> RunStatus:
    """Apply what the shop changed since the cursor; record how the run ended."""
    status, error, more = RunStatus.OK, None, False
    notes: str | None = None
    try:
        auth, credentials, cursor = await _shop(engine, shop_id, secret_key, now)
        since, until = cursor or now - FIRST_LOOKBACK, now - GRACE
        tz = auth.settings.timezone
        async with connector.open(credentials.url, credentials.key) as ws:
            known = await catalogue(ws)
            for number in range(MAX_PAGES):
                page = _latest(await read_page(ws, known, tz, since, until, number * PAGE))
                seen = [p.updated_at for p in page if p.updated_at is not None]
                async with transaction(engine) as conn:
                    await apply(conn, auth, page, now)
                    if seen:
                        cursor = min(max(seen), until)
                        await _move(conn, shop_id, cursor)
                if len(page) < PAGE:
                    break
            else:
                more = True
            found = await threads.import_threads(
                engine, ws, auth, known.languages, since, until, now=now
            )
        notes = found.summary()
        if found.error is not None:
            status, error = found.error.status, str(found.error)
        moved = _joint_cursor(found, cursor, since, until, orders_done=not more)
        if moved is not None:
            async with transaction(engine) as conn:
                await _move(conn, shop_id, moved)
        more = more or (found.permitted and not found.complete and found.error is None)
    except NotFound:
        return RunStatus.NOT_FOUND  # the shop or its Webservice was deleted meanwhile
    except ValueError as exc:  # RELANCE_SECRET_KEY changed without `relance rekey`
        status, error = RunStatus.UNREADABLE_KEY, str(exc)
    except WebserviceError as exc:
        status, error = exc.status, str(exc)
    if error:
        log.warning("reconciliation of shop %s: %s", shop_id, error)
    elif notes:
        log.info("reconciliation of shop %s: %s", shop_id, notes)
    # Without an error, `last_error` carries the threads' notes (a missing permission, a
    # truncated message): what the merchant may want to fix.
    error = error or notes
    async with transaction(engine) as conn:
        await conn.execute(
            update(PrestashopWebservice)
            .where(PrestashopWebservice.shop_id == shop_id)
            .values(
                claimed_until=None,
                next_run_at=now if more else now + RECONCILE_EVERY,
                last_run_at=now,
                last_status=status,
                last_error=None if error is None else error[:300],
            )
        )
    return status
