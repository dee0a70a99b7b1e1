"""The KPI report's SQL: one aggregate pass per source, grouped by bucket (week, month) or not.

Each function returns `{bucket: {name: number}}`; the bucket is the local date a week (Monday)
or month starts on, or `None` for the whole period. With a granularity, the whole period's
row and the buckets' come from the same scan on PostgreSQL (`GROUPING SETS`), from two on
SQLite. Counts and sums are `FILTER` aggregates; medians are PostgreSQL's
`percentile_cont(0.5)` in the same pass, and on SQLite the same linear interpolation from
`row_number()`/`count()` window functions (the mean of the middle one or two values), never a
loop over rows in Python.

Rows of tickets and messages carry the shop-local `period_date`; the other sources are
selected by UTC instants computed from the local dates (`Period`). Each pass reads an index
made for it (partial where it reads a subset, covering on PostgreSQL: the models say which),
so the report reads about what it counts (docs/kpis.md, "Performance").
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import (
    Date,
    DateTime,
    and_,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    null,
    or_,
    select,
    true,
    tuple_,
    union,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import FromClause

from app import sentiment
from app.db import UTCDateTime
from app.orders.models import Order, OrderHistory
from app.requests.models import Delivery, ReviewRequest
from app.reviews.models import Review
from app.tickets.models import Ticket, TicketMessage
from app.webhooks.models import WebhookEvent

Granularity = Literal["week", "month"]
Bucketed = dict[date | None, dict[str, Any]]

RETURN_EVENT = "order.return_requested"
# The languages the sentiment analyser knows; a message in another one counts as "other".
SENTIMENT_LANGUAGES = tuple(sorted(sentiment.ACCURACY))
OTHER_LANGUAGE = "other"
ACK_SECONDS = 86_400  # 24 business hours
CONVERSION_DAYS = 30


@dataclass(frozen=True)
class Period:
    """What every query filters on: the shop, its local dates and their UTC instants."""

    shop_id: str
    start: date
    end: date  # included
    lo: datetime  # local midnight starting `start`, in UTC
    hi: datetime  # local midnight after `end`, in UTC (excluded)
    now: datetime
    timezone: str
    granularity: Granularity | None = None
    # (bucket start, its UTC lower bound) for each bucket after the first: SQLite's buckets
    # of instants, which it cannot convert to a zone.
    edges: tuple[tuple[date, datetime], ...] = ()
    first_bucket: date | None = None


# FILTER rather than sum(CASE ...): PostgreSQL skips the aggregate's work for rows left out,
# which counts over millions of rows. A sum over no row is NULL, read as 0.
def _n(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.count().filter(condition)


def _sum(condition: ColumnElement[bool], value: ColumnElement[Any]) -> ColumnElement[Any]:
    return func.sum(value).filter(condition)


def _is_pg(conn: AsyncConnection) -> bool:
    return conn.dialect.name == "postgresql"


def date_bucket(conn: AsyncConnection, p: Period, col: Any) -> ColumnElement[Any] | None:
    """The bucket of a local date column (weeks start on Monday)."""
    if p.granularity is None:
        return None
    if _is_pg(conn):
        # A date is cast to a plain timestamp first: date_trunc on timestamptz would use the
        # session's zone.
        return cast(func.date_trunc(p.granularity, cast(col, DateTime())), Date)
    if p.granularity == "week":
        return func.date(col, "-6 days", "weekday 1")
    return func.date(col, "start of month")


def date_day(conn: AsyncConnection, p: Period, col: Any) -> ColumnElement[Any] | None:
    """A local date column as it is, for a pass whose rows are summed into buckets here
    (`_grouped` with `by_day`): no expression per row."""
    return None if p.granularity is None else col


def instant_day(conn: AsyncConnection, p: Period, col: Any) -> ColumnElement[Any] | None:
    """The local date of a UTC instant (PostgreSQL), for a pass summed into buckets here;
    SQLite's bucket as `instant_bucket` gives it (a bucket's first day is its own bucket)."""
    if p.granularity is None or not _is_pg(conn):
        return instant_bucket(conn, p, col)
    return cast(func.timezone(p.timezone, col), Date)


def bucket_of(p: Period, day: date) -> date:
    """The bucket a local date is in: its week's Monday, or its month's first day."""
    if p.granularity == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def instant_bucket(conn: AsyncConnection, p: Period, col: Any) -> ColumnElement[Any] | None:
    """The bucket of a UTC instant column, by its local date in the shop's zone."""
    if p.granularity is None:
        return None
    if _is_pg(conn):
        return cast(func.date_trunc(p.granularity, func.timezone(p.timezone, col)), Date)
    # SQLite knows no zones: compare with each bucket's UTC start (at most ~160 buckets).
    whens = [(col >= literal(lo, UTCDateTime()), start.isoformat()) for start, lo in p.edges]
    first = (p.first_bucket or p.start).isoformat()
    if not whens:
        return literal(first)
    return case(*reversed(whens), else_=literal(first))


def _key(value: Any) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _plain(value: Any) -> Any:
    # Numeric (PostgreSQL sums and averages) -> float; None stays.
    return float(value) if isinstance(value, Decimal) else value


async def _grouped(
    conn: AsyncConnection,
    bucket: ColumnElement[Any] | None,
    columns: Sequence[ColumnElement[Any]],
    source: FromClause,
    where: Sequence[ColumnElement[bool]],
    medians: Sequence[tuple[str, ColumnElement[Any]]] = (),
    extra_group: Sequence[ColumnElement[Any]] = (),
    by_day: Period | None = None,
) -> list[dict[str, Any]]:
    """The whole period's rows (bucket None), and each bucket's when `bucket` is given.

    Counts and sums of the whole period are the sums of its buckets' (each row is in one
    bucket): one pass grouped by bucket. A median is not: on PostgreSQL the buckets and the
    whole period then come from one scan (`GROUPING SETS`), on SQLite from two passes.

    `by_day` (passes without medians): `bucket` is the rows' local date (`date_day`,
    `instant_day`), and the days' counts and sums are added up here into their buckets — a
    week's expression on every row cost more than the grouping (bench.kpis: the sentiments'
    weekly pass 0.23 s by week, 0.15 s by day).
    """
    if bucket is None:
        return await _pass(conn, None, columns, source, where, medians, extra_group)
    if by_day is not None and not medians:
        days = await _pass(conn, bucket, columns, source, where, (), extra_group)
        keys = [g.key for g in extra_group]
        period = by_day
        rows = _sum_buckets(days, keys, lambda day: bucket_of(period, day))
        return rows + _sum_buckets(rows, keys)
    if medians and _is_pg(conn):
        return await _pass(conn, bucket, columns, source, where, medians, extra_group, True)
    rows = await _pass(conn, bucket, columns, source, where, medians, extra_group)
    if medians:
        whole = await _pass(conn, None, columns, source, where, medians, extra_group)
    else:
        whole = _sum_buckets(rows, [g.key for g in extra_group])
    return rows + whole


def _sum_buckets(
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str | None],
    into: Callable[[date], date | None] = lambda _: None,
) -> list[dict[str, Any]]:
    """Rows' counts and sums added up per extra group key into the bucket `into` gives for
    each row's bucket: by default the whole period's (None)."""
    found: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        target = into(row["bucket"])
        group = (target, *(row[k] for k in keys if k is not None))
        whole = found.setdefault(group, {"bucket": target, **{k: row[k] for k in keys if k}})
        for name, value in row.items():
            if name == "bucket" or name in keys or value is None:
                continue
            whole[name] = whole.get(name, 0) + value
    return list(found.values())


async def _pass(
    conn: AsyncConnection,
    bucket: ColumnElement[Any] | None,
    columns: Sequence[ColumnElement[Any]],
    source: FromClause,
    where: Sequence[ColumnElement[bool]],
    medians: Sequence[tuple[str, ColumnElement[Any]]] = (),
    extra_group: Sequence[ColumnElement[Any]] = (),
    with_whole: bool = False,
) -> list[dict[str, Any]]:
    """One aggregate pass (with PostgreSQL's medians in it); SQLite's medians run apart.

    `with_whole` (PostgreSQL): the buckets and the whole period from the same scan, by
    `GROUPING SETS`; `grouping()` tells the whole period's rows.
    """
    head = [(bucket if bucket is not None else null()).label("bucket"), *extra_group]
    if with_whole:
        head.append(func.grouping(bucket).label("whole_"))
    cols = list(columns)
    if _is_pg(conn):
        cols += [func.percentile_cont(0.5).within_group(c).label(n) for n, c in medians]
    stmt = select(*head, *cols).select_from(source).where(*where)
    if with_whole:
        stmt = stmt.group_by(func.grouping_sets(tuple_(bucket, *extra_group), tuple_(*extra_group)))
    else:
        groups = [g for g in (bucket, *extra_group) if g is not None]
        if groups:
            stmt = stmt.group_by(*groups)
    rows = []
    for r in (await conn.execute(stmt)).mappings():
        row = {k: (_key(v) if k == "bucket" else _plain(v)) for k, v in r.items()}
        if row.pop("whole_", 0):
            row["bucket"] = None
        rows.append(row)
    if not _is_pg(conn):
        for name, col in medians:
            found = await _window_median(conn, bucket, col, source, where)
            for row in rows:
                row[name] = found.get(row["bucket"])
    return rows


async def _window_median(
    conn: AsyncConnection,
    bucket: ColumnElement[Any] | None,
    col: ColumnElement[Any],
    source: FromClause,
    where: Sequence[ColumnElement[bool]],
) -> dict[date | None, float]:
    """percentile_cont(0.5) from window functions: the mean of the middle one or two values."""
    part = [bucket] if bucket is not None else []
    ranked = (
        select(
            (bucket if bucket is not None else null()).label("b"),
            col.label("v"),
            func.row_number().over(partition_by=part, order_by=col).label("rn"),
            func.count().over(partition_by=part).label("c"),
        )
        .select_from(source)
        .where(*where, col.is_not(None))
        .subquery()
    )
    # Integer division: c = 4 keeps rows 2 and 3, c = 5 keeps row 3.
    stmt = (
        select(ranked.c.b, func.avg(ranked.c.v))
        .where(ranked.c.rn.in_([(ranked.c.c + 1) // 2, (ranked.c.c + 2) // 2]))
        .group_by(ranked.c.b)
    )
    return {_key(b): float(v) for b, v in (await conn.execute(stmt)).all()}


def _by_bucket(rows: Iterable[dict[str, Any]]) -> Bucketed:
    return {row.pop("bucket"): row for row in rows}


def order_created_at() -> ColumnElement[Any]:
    """An order's creation: its `date_add`, else the time of its first history entry."""
    first = (
        select(func.min(OrderHistory.occurred_at))
        .where(OrderHistory.shop_id == Order.shop_id, OrderHistory.order_id == Order.order_id)
        .scalar_subquery()
    )
    return func.coalesce(Order.ordered_at, first)


def _plus_days(conn: AsyncConnection, col: Any, days: int) -> ColumnElement[Any]:
    if _is_pg(conn):
        return col + func.make_interval(0, 0, 0, days)  # type: ignore[no-any-return]
    # SQLite stores '%Y-%m-%d %H:%M:%S.ffffff' text; this keeps milliseconds.
    return func.strftime("%Y-%m-%d %H:%M:%f", col, f"+{days} days")


async def tickets(conn: AsyncConnection, p: Period) -> Bucketed:
    """The period's tickets (by `period_date`): one pass."""
    t = Ticket.__table__.c
    first_at = func.coalesce(t.first_customer_at, t.created_at)
    until = _plus_days(conn, first_at, CONVERSION_DAYS)
    o = Order.__table__.c
    # An order created in [first_at, until): by its date (read from ix_orders_email_ordered),
    # or, without one, by its first history entry. The same as order_created_at() in range.
    customer = [o.shop_id == t.shop_id, o.email_normalized == t.email_normalized]
    converted = or_(
        exists().where(*customer, o.ordered_at >= first_at, o.ordered_at < until),
        exists().where(
            *customer,
            o.ordered_at.is_(None),
            order_created_at() >= first_at,
            order_created_at() < until,
        ),
    )
    needing = t.first_needing_at.is_not(None)
    decided = and_(needing, or_(t.first_reply_at.is_not(None), t.ack_deadline_at <= p.now))
    resolved = t.resolved_at.is_not(None)
    pre_sale = t.category == "pre_sale"
    columns = [
        _n(decided).label("ack_n"),
        _n(and_(decided, t.first_reply_business_s <= ACK_SECONDS)).label("ack_ok"),
        func.count(t.first_reply_business_s).label("fr_n"),
        func.sum(t.first_reply_business_s).label("fr_b_sum"),
        func.sum(t.first_reply_calendar_s).label("fr_c_sum"),
        _n(resolved).label("resolved_n"),
        func.count(t.resolution_s).label("res_n"),
        func.sum(t.resolution_s).label("res_sum"),
        _sum(resolved, t.exchanges).label("exch_sum"),
        _n(and_(resolved, t.replies <= 1, t.reopens == 0)).label("fcr_n"),
        _n(t.reopens > 0).label("reopened_n"),
        _n(pre_sale).label("pre_n"),
        _n(t.category == "after_sale").label("after_n"),
        _n(t.category == "complaint").label("complaint_n"),
        # Nested CASE: the order lookup runs for pre-sale tickets only.
        func.sum(case((pre_sale, case((converted, 1), else_=0)), else_=0)).label("conv_n"),
        func.count(t.csat).label("csat_n"),
        _n(t.csat >= 4).label("csat_ok"),
        func.count(t.nps).label("nps_n"),
        _n(t.nps >= 9).label("nps_pro"),
        _n(t.nps <= 6).label("nps_det"),
    ]
    for level, cond in (("1", t.level == 1), ("2", t.level == 2), ("none", t.level.is_(None))):
        columns += [
            _n(and_(resolved, cond)).label(f"resolved_l{level}"),
            _sum(and_(resolved, cond), t.exchanges).label(f"exch_l{level}"),
        ]
    where = _ticket_period(p)
    if _ticket_medians_apart(conn, p):
        day = date_day(conn, p, t.period_date)
        return _by_bucket(await _grouped(conn, day, columns, Ticket.__table__, where, by_day=p))
    bucket = date_bucket(conn, p, t.period_date)
    return _by_bucket(
        await _grouped(conn, bucket, columns, Ticket.__table__, where, _ticket_medians())
    )


def _ticket_period(p: Period) -> list[ColumnElement[bool]]:
    t = Ticket.__table__.c
    return [t.shop_id == p.shop_id, t.period_date >= p.start, t.period_date <= p.end]


def _ticket_medians() -> list[tuple[str, ColumnElement[Any]]]:
    t = Ticket.__table__.c
    return [
        ("fr_b_median", t.first_reply_business_s),
        ("fr_c_median", t.first_reply_calendar_s),
        ("res_median", t.resolution_s),
    ]


def _ticket_medians_apart(conn: AsyncConnection, p: Period) -> bool:
    """With buckets on PostgreSQL, the tickets' medians are a narrow pass of their own
    (`ticket_medians`, which the report runs beside the counters): the counters by day and
    the medians by `GROUPING SETS` cost 0.58 s against 0.64 s for one pass (bench.kpis, six
    months weekly), and the two halves run at the same time."""
    return p.granularity is not None and _is_pg(conn)


async def ticket_medians(conn: AsyncConnection, p: Period) -> Bucketed:
    """The tickets' medians per bucket and for the whole period, when `tickets` leaves them
    out (`_ticket_medians_apart`); else nothing."""
    if not _ticket_medians_apart(conn, p):
        return {}
    bucket = date_bucket(conn, p, Ticket.__table__.c.period_date)
    where, medians = _ticket_period(p), _ticket_medians()
    return _by_bucket(await _pass(conn, bucket, [], Ticket.__table__, where, medians, (), True))


def _needing(m: Any) -> ColumnElement[bool]:
    return and_(
        m.author == "customer", m.public == true(), m.automatic == false(), m.needs_reply == true()
    )


async def messages(conn: AsyncConnection, p: Period) -> Bucketed:
    """The period's messages needing a reply (by their own `period_date`): response rate and
    reply times. Reads ix_ticket_messages_needing only (its predicate is `_needing`)."""
    m = TicketMessage.__table__.c
    answered = m.answered_at.is_not(None)
    decided = or_(answered, m.deadline_at <= p.now)
    replied = and_(answered, m.reply_business_s.is_not(None))
    columns = [
        _n(decided).label("need_n"),
        _n(and_(decided, answered)).label("answered_n"),
        _n(replied).label("reply_n"),
        _sum(replied, m.reply_business_s).label("reply_sum"),
    ]
    where = [
        m.shop_id == p.shop_id,
        m.period_date >= p.start,
        m.period_date <= p.end,
        _needing(m),
    ]
    medians = [("reply_median", case((replied, m.reply_business_s)))]
    bucket = date_bucket(conn, p, m.period_date)
    src = TicketMessage.__table__
    return _by_bucket(await _grouped(conn, bucket, columns, src, where, medians))


async def sentiments(conn: AsyncConnection, p: Period) -> Bucketed:
    """The sentiment of the period's customer messages, per language: a GROUP BY over
    ix_ticket_messages_commented, folded here into `sent_{n,pos,neg}_{language}` (languages
    the analyser does not know, or none, as "other")."""
    m = TicketMessage.__table__.c
    where = [
        m.shop_id == p.shop_id,
        m.period_date >= p.start,
        m.period_date <= p.end,
        m.author == "customer",
        m.sentiment.is_not(None),
    ]
    group = [m.language.label("lang"), m.sentiment.label("sentiment")]
    columns = [func.count().label("n")]
    day = date_day(conn, p, m.period_date)
    src = TicketMessage.__table__
    rows = await _grouped(conn, day, columns, src, where, extra_group=group, by_day=p)
    found: Bucketed = {}
    for row in rows:
        counts = found.setdefault(row["bucket"], {})
        tag = row["lang"] if row["lang"] in SENTIMENT_LANGUAGES else OTHER_LANGUAGE
        keys = ["n", *{"positive": ["pos"], "negative": ["neg"]}.get(row["sentiment"], [])]
        for key in keys:
            name = f"sent_{key}_{tag}"
            counts[name] = counts.get(name, 0) + int(row["n"])
    return found


async def ratings(conn: AsyncConnection, p: Period) -> Bucketed:
    """Ratings of replies, for the period of their ticket.

    Only replies sent on or after the period's first day are read (a rating is about a reply,
    which follows its ticket's first message): the messages' period index bounds the pass.
    """
    m, t = TicketMessage.__table__.c, Ticket.__table__.c
    rated = or_(m.speed_rating.is_not(None), m.quality_rating.is_not(None))
    columns = [
        func.count(m.speed_rating).label("speed_n"),
        func.sum(m.speed_rating).label("speed_sum"),
        func.count(m.quality_rating).label("quality_n"),
        func.sum(m.quality_rating).label("quality_sum"),
    ]
    source = TicketMessage.__table__.join(Ticket.__table__, t.id == m.ticket_id)
    where = [
        m.shop_id == p.shop_id,
        m.period_date >= p.start,
        m.author == "agent",
        rated,
        t.shop_id == p.shop_id,
        t.period_date >= p.start,
        t.period_date <= p.end,
    ]
    day = date_day(conn, p, t.period_date)
    return _by_bucket(await _grouped(conn, day, columns, source, where, by_day=p))


def _live_request(q: Any) -> ColumnElement[bool]:
    live: ColumnElement[bool] = q.dry_run == false()
    return live


async def reviews(conn: AsyncConnection, p: Period) -> list[dict[str, Any]]:
    """The period's reviews (by `created_at`), out of dry runs: NPS and sentiment, per language."""
    r, q = Review.__table__.c, ReviewRequest.__table__.c
    columns = [
        func.count(r.nps).label("nps_n"),
        _n(r.nps >= 9).label("nps_pro"),
        _n(r.nps <= 6).label("nps_det"),
        func.count(r.sentiment).label("n"),
        _n(r.sentiment == "positive").label("pos"),
        _n(r.sentiment == "negative").label("neg"),
    ]
    # Every review has its request (a foreign key): "not of a dry run's request" is an anti
    # join with the few dry runs (ix_review_requests_dry_run), not a lookup per review.
    dry = exists().where(q.id == r.request_id, q.dry_run == true())
    where = [r.shop_id == p.shop_id, r.created_at >= p.lo, r.created_at < p.hi, ~dry]
    source = Review.__table__
    day = instant_day(conn, p, r.created_at)
    return await _grouped(
        conn, day, columns, source, where, extra_group=[r.language.label("lang")], by_day=p
    )


async def orders(conn: AsyncConnection, p: Period) -> Bucketed:
    """Orders created in the period (the denominator of the contact rates).

    Written as two ranges (`date_add` in the period, or no `date_add` and a first history
    entry in it) so that an index on (shop_id, ordered_at) serves the first.
    """
    o = Order.__table__.c
    dated = select(o.ordered_at.label("created")).where(
        o.shop_id == p.shop_id, o.ordered_at >= p.lo, o.ordered_at < p.hi
    )
    # Orders without a date: their first history entry (one join, grouped), in the period.
    h = OrderHistory.__table__.c
    first = func.min(h.occurred_at)
    undated = (
        select(first.label("created"))
        .select_from(
            Order.__table__.join(
                OrderHistory.__table__, and_(h.shop_id == o.shop_id, h.order_id == o.order_id)
            )
        )
        .where(o.shop_id == p.shop_id, o.ordered_at.is_(None))
        .group_by(o.order_id)
        .having(and_(first >= p.lo, first < p.hi))
    )
    created = union_all(dated, undated).subquery("created")
    day = instant_day(conn, p, created.c.created)
    columns = [func.count().label("orders_n")]
    return _by_bucket(await _grouped(conn, day, columns, created, [], by_day=p))


async def returns(
    conn: AsyncConnection, p: Period, trigger_states: Sequence[int], refund_states: Sequence[int]
) -> Bucketed:
    """Orders delivered in the period (first trigger state) and those returned or refunded.

    An order's first trigger entry is in the period when the first of its trigger entries
    before the period's end is in it. Every such order has a trigger entry in the period, so
    its id lies between the smallest and the largest id of those (read from
    ix_order_history_state); the entries read are those of the orders in that range, in
    order id order (ix_order_history_order), grouped without a sort or a hash: recent orders
    (ids grow with time), not the shop's whole history, and no lookup per order.
    """
    h = OrderHistory.__table__.c
    triggers = list(trigger_states)
    # count() keeps PostgreSQL from reading min and max through ix_order_history_order, in
    # id order from the shop's first order.
    ids = (
        select(
            func.min(h.order_id).label("lo_id"),
            func.max(h.order_id).label("hi_id"),
            func.count().label("n"),
        )
        .where(
            h.shop_id == p.shop_id,
            h.state_id.in_(triggers),
            h.occurred_at >= p.lo,
            h.occurred_at < p.hi,
        )
        .cte("ids")
    )
    first = func.min(h.occurred_at)
    delivered = (
        select(h.order_id.label("order_id"), first.label("at"))
        .where(
            h.shop_id == p.shop_id,
            h.order_id >= select(ids.c.lo_id).scalar_subquery(),
            h.order_id <= select(ids.c.hi_id).scalar_subquery(),
            h.state_id.in_(triggers),
            h.occurred_at < p.hi,
        )
        .group_by(h.order_id)
        .having(first >= p.lo)
        .subquery()
    )
    # The orders ever returned or refunded, as one set joined once (a lookup per delivered
    # order, inside a CASE, ran as a subplan per row).
    w = WebhookEvent.__table__.c
    returned = union(
        select(w.order_id.label("order_id")).where(
            w.shop_id == p.shop_id, w.type == RETURN_EVENT, w.order_id.is_not(None)
        ),
        select(h.order_id).where(h.shop_id == p.shop_id, h.state_id.in_(list(refund_states))),
    ).subquery()
    columns = [
        func.count().label("delivered_n"),
        func.count(returned.c.order_id).label("returned_n"),
    ]
    source = delivered.outerjoin(returned, returned.c.order_id == delivered.c.order_id)
    day = instant_day(conn, p, delivered.c.at)
    return _by_bucket(await _grouped(conn, day, columns, source, [], by_day=p))


async def requests_sent(conn: AsyncConnection, p: Period) -> Bucketed:
    """Review requests sent in the period (dry runs left out): clicks, reviews, ratings."""
    q, r, d = ReviewRequest.__table__.c, Review.__table__.c, Delivery.__table__.c
    clicked = exists().where(d.request_id == q.id, d.clicked_at.is_not(None), d.dry_run == false())
    columns = [
        func.count().label("sent_n"),
        _n(clicked).label("clicked_n"),
        func.count(r.id).label("reviewed_n"),
        func.sum(r.rating).label("rating_sum"),
    ]
    source = ReviewRequest.__table__.outerjoin(Review.__table__, r.request_id == q.id)
    where = [q.shop_id == p.shop_id, q.sent_at >= p.lo, q.sent_at < p.hi, _live_request(q)]
    day = instant_day(conn, p, q.sent_at)
    return _by_bucket(await _grouped(conn, day, columns, source, where, by_day=p))


async def requests_decided(conn: AsyncConnection, p: Period) -> list[dict[str, Any]]:
    """Requests skipped or cancelled in the period (by the decision's time), per reason."""
    q = ReviewRequest.__table__.c
    where = [
        q.shop_id == p.shop_id,
        q.status.in_(["skipped", "cancelled"]),
        q.updated_at >= p.lo,
        q.updated_at < p.hi,
        _live_request(q),
    ]
    day = instant_day(conn, p, q.updated_at)
    group = [q.status.label("status"), func.coalesce(q.reason, "").label("reason")]
    columns = [func.count().label("n")]
    src = ReviewRequest.__table__
    return await _grouped(conn, day, columns, src, where, extra_group=group, by_day=p)
