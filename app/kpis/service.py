"""The KPI report: the period's bounds, the aggregate passes, and the figures from their sums.

Every definition is in docs/kpis.md; the SQL is in `queries.py`. `report` is also what the
expertise level and the dashboard call.
"""

import asyncio
import weakref
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from app import sentiment
from app.db import transaction
from app.errors import InvalidInput
from app.kpis import queries
from app.kpis.queries import Bucketed, Granularity, Period
from app.kpis.schemas import Kpi, KpiReport, Part, SeriesPoint, Status
from app.shops import service as shops
from app.shops.settings import KPI_UNITS, KpiSettings

MAX_DAYS = 3 * 366  # a report covers at most about three years
EARLIEST, LATEST = date(2000, 1, 1), date(2199, 12, 30)
# Where a lower value is better; everywhere else a higher one is.
LOWER_IS_BETTER = frozenset(
    {
        "first_reply_business_s_mean",
        "first_reply_business_s_median",
        "first_reply_calendar_s_mean",
        "first_reply_calendar_s_median",
        "reply_business_s_mean",
        "reply_business_s_median",
        "resolution_s_mean",
        "resolution_s_median",
        "exchanges_per_ticket",
        "reopen_rate",
        "pre_sale_contact_rate",
        "after_sale_contact_rate",
        "complaint_rate",
        "return_rate",
        "review_requests_skipped",
        "review_requests_cancelled",
        "sentiment_negative_share",
    }
)
WATCH_MARGIN = 0.2  # missed by less than 20 % of the target: watch
INDICATIVE_BELOW = sentiment.INDICATIVE_BELOW  # a language measured below: indicative


def check_period(start: date, end: date) -> None:
    """422 naming the field: the dates' range, their order, the span."""
    for name, day in (("from", start), ("to", end)):
        if not EARLIEST <= day <= LATEST:
            raise InvalidInput(
                f"`{name}` is out of range.",
                [{"loc": ["query", name], "msg": f"must be from {EARLIEST} to {LATEST}"}],
            )
    if end < start:
        raise InvalidInput(
            "`to` is before `from`.", [{"loc": ["query", "to"], "msg": "must not be before from"}]
        )
    if (end - start).days >= MAX_DAYS:
        raise InvalidInput(
            "The period is too long.",
            [{"loc": ["query", "to"], "msg": f"a period covers at most {MAX_DAYS} days"}],
        )


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), zone).astimezone(UTC)


def bucket_starts(start: date, end: date, granularity: Granularity) -> list[date]:
    """The Mondays (or first days of month) of the buckets that cover start..end."""
    if granularity == "week":
        first = start - timedelta(days=start.weekday())
        return [first + timedelta(weeks=i) for i in range((end - first).days // 7 + 1)]
    found, day = [], start.replace(day=1)
    while day <= end:
        found.append(day)
        day = (day + timedelta(days=32)).replace(day=1)
    return found


def _period(
    shop_id: str, start: date, end: date, now: datetime, tz: str, granularity: Granularity | None
) -> Period:
    zone = ZoneInfo(tz)
    lo, hi = local_midnight(start, zone), local_midnight(end + timedelta(days=1), zone)
    if granularity is None:
        return Period(shop_id, start, end, lo, hi, now, tz)
    starts = bucket_starts(start, end, granularity)
    edges = tuple((d, local_midnight(d, zone)) for d in starts[1:])
    return Period(shop_id, start, end, lo, hi, now, tz, granularity, edges, starts[0])


async def report(
    conn: AsyncConnection,
    shop_id: str,
    start: date,
    end: date,
    *,
    now: datetime,
    granularity: str | None = None,
    concurrent: bool = False,
    series_keys: Sequence[str] | None = None,
) -> KpiReport:
    """The shop's KPIs over its local dates start..end (both included), as of `now`.

    `concurrent` (PostgreSQL): half the passes run on a second connection at the same time.
    Only for a caller whose transaction has written nothing the report must see (the other
    connection cannot see it): the API's and the dashboard's read-only requests.
    `series_keys`: the series holds only these KPIs (every one when None), and the passes
    that feed none of them run for the whole period only (the dashboard's charts).
    """
    check_period(start, end)
    wanted = _series_keys(series_keys)
    if granularity not in (None, "week", "month"):
        raise InvalidInput(
            "Unknown granularity.",
            [{"loc": ["query", "granularity"], "msg": "must be week or month"}],
        )
    settings = (await shops.get(conn, shop_id)).settings
    if conn.dialect.name == "postgresql":
        await _tune(conn)
    tz = settings.timezone
    gran: Granularity | None = "week" if granularity == "week" else None
    if granularity == "month":
        gran = "month"
    # One set of passes gives the whole period (bucket None) and, with a granularity, its
    # buckets (queries._grouped).
    period = _period(shop_id, start, end, now, tz, gran)
    by_bucket = await _passes(
        conn, period, settings.trigger_state_ids, settings.kpis, concurrent, _bucketed(wanted)
    )
    kpis = _figures(by_bucket.get(None, {}), settings.kpis)
    series = None
    if gran is not None:
        series = []
        for d in bucket_starts(start, end, gran):
            point = _figures(by_bucket.get(d, {}), settings.kpis)
            if wanted is not None:
                point = {key: point[key] for key in KPI_UNITS if key in wanted}
            series.append(SeriesPoint(period_start=d, kpis=point))
    return KpiReport(from_=start, to=end, timezone=tz, granularity=gran, kpis=kpis, series=series)


# Which KPIs each pass feeds (a KPI made of two passes is in both): with `series_keys`, a pass
# that feeds none of them runs for the whole period only.
PASS_KPIS: dict[str, frozenset[str]] = {
    "tickets": frozenset(
        {
            "acknowledged_24h_rate", "first_reply_business_s_mean",
            "first_reply_business_s_median", "first_reply_calendar_s_mean",
            "first_reply_calendar_s_median", "resolution_s_mean", "resolution_s_median",
            "exchanges_per_ticket", "first_contact_resolution_rate", "reopen_rate",
            "pre_sale_contact_rate", "after_sale_contact_rate", "complaint_rate", "csat", "nps",
            "conversion_after_pre_sale_rate",
        }
    ),
    "messages": frozenset({"response_rate", "reply_business_s_mean", "reply_business_s_median"}),
    "sentiments": frozenset({"sentiment_positive_share", "sentiment_negative_share"}),
    "ratings": frozenset({"speed_rating_mean", "quality_rating_mean"}),
    "reviews": frozenset({"nps", "sentiment_positive_share", "sentiment_negative_share"}),
    "orders": frozenset({"pre_sale_contact_rate", "after_sale_contact_rate", "complaint_rate"}),
    "returns": frozenset({"return_rate"}),
    "requests_sent": frozenset(
        {"review_requests_sent", "review_click_rate", "review_rate", "review_rating_mean"}
    ),
    "decisions": frozenset({"review_requests_skipped", "review_requests_cancelled"}),
}  # fmt: skip


def _series_keys(keys: Sequence[str] | None) -> frozenset[str] | None:
    if keys is None:
        return None
    unknown = sorted(set(keys) - set(KPI_UNITS))
    if unknown or not keys:
        said = f"unknown KPI keys: {', '.join(unknown)}" if unknown else "name at least one KPI"
        raise InvalidInput(
            "The series names unknown KPIs." if unknown else "The series names no KPI.",
            [{"loc": ["query", "series"], "msg": said}],
        )
    return frozenset(keys)


def _bucketed(wanted: frozenset[str] | None) -> frozenset[str] | None:
    """The passes the series needs by bucket (None: all of them)."""
    if wanted is None:
        return None
    return frozenset(name for name, keys in PASS_KPIS.items() if keys & wanted)


async def _passes(
    conn: AsyncConnection,
    p: Period,
    trigger_states: list[int],
    kpi_settings: KpiSettings,
    concurrent: bool = False,
    bucketed_passes: frozenset[str] | None = None,
) -> dict[date | None, dict[str, Any]]:
    """Every aggregate pass, merged per bucket; per-language and per-reason rows as lists.

    Two lanes of about equal cost (`_lanes`, from each pass's measured cost). With
    `concurrent` on PostgreSQL, the second lane runs on a second connection at the same time
    (`_spare`), or after the first on the caller's when none is to spare. Each pass reads its
    own snapshot either way (READ COMMITTED), as one pass after another always did.
    """
    merged: dict[date | None, dict[str, Any]] = defaultdict(dict)

    def fold(rows: Bucketed) -> None:
        for bucket, values in rows.items():
            merged[bucket].update(values)

    def fold_rows(name: str, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            merged[row.pop("bucket")].setdefault(name, []).append(row)

    whole = replace(p, granularity=None, edges=(), first_bucket=None)

    def of(name: str) -> Period:  # the period a pass runs over: by bucket, or whole only
        if bucketed_passes is None or name in bucketed_passes:
            return p
        return whole

    def period_of(name: str) -> Period:  # the tickets' medians go with the tickets
        return of("tickets" if name == "ticket_medians" else name)

    async def run(name: str, c: AsyncConnection) -> None:
        period = period_of(name)
        if name == "reviews":
            fold_rows(name, await queries.reviews(c, period))
        elif name == "decisions":
            fold_rows(name, await queries.requests_decided(c, period))
        elif name == "returns":
            refunds = kpi_settings.refund_state_ids
            fold(await queries.returns(c, period, trigger_states, refunds))
        else:
            fold(await _SIMPLE_PASSES[name](c, period))

    by_bucket = {name: period_of(name).granularity is not None for name in PASS_COST_MS}
    first, second = _lanes(by_bucket)

    async def run_lane(names: list[str], c: AsyncConnection) -> None:
        for name in names:
            await run(name, c)

    spare = _spare(conn) if concurrent and conn.dialect.name == "postgresql" else None
    if spare is None:
        await run_lane(first + second, conn)
        return merged
    async with spare, transaction(conn.engine, read_only=True) as other:
        await _tune(other)
        lanes = [
            asyncio.ensure_future(run_lane(first, conn)),
            asyncio.ensure_future(run_lane(second, other)),
        ]
        try:
            # If one lane fails, the other still ends its statement and its lane: cancelled in
            # the middle of a statement, a connection is dropped rather than reused.
            outcomes = await asyncio.gather(*lanes, return_exceptions=True)
        except BaseException:  # cancelled from outside: the client went away
            for lane in lanes:
                lane.cancel()
            await asyncio.gather(*lanes, return_exceptions=True)
            raise
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome  # the first error as it is (a 503 for an outage)
    return merged


# What each pass costs (ms, bench.kpis: six months of a shop with 1,000,000 tickets), for the
# whole period only and with buckets: the weights `_lanes` balances. `ticket_medians` is a pass
# only with buckets (queries.ticket_medians).
PASS_COST_MS: dict[str, tuple[int, int]] = {
    "tickets": (423, 480),
    "ticket_medians": (0, 201),
    "messages": (121, 334),
    "sentiments": (110, 150),
    "ratings": (85, 102),
    "reviews": (12, 35),
    "orders": (119, 250),
    "returns": (229, 371),
    "requests_sent": (116, 148),
    "decisions": (7, 10),
}


# The passes that take only the connection and the period.
_SIMPLE_PASSES: dict[str, Callable[[AsyncConnection, Period], Awaitable[Bucketed]]] = {
    "tickets": queries.tickets,
    "ticket_medians": queries.ticket_medians,
    "messages": queries.messages,
    "sentiments": queries.sentiments,
    "ratings": queries.ratings,
    "orders": queries.orders,
    "requests_sent": queries.requests_sent,
}


def _lanes(bucketed: Mapping[str, bool]) -> tuple[list[str], list[str]]:
    """The passes in two lanes of about equal cost: the costliest first, each into the lane
    that costs less so far (longest processing time first)."""
    cost = {name: PASS_COST_MS[name][1 if by_bucket else 0] for name, by_bucket in bucketed.items()}
    lanes: tuple[list[str], list[str]] = ([], [])
    totals = [0, 0]
    for name in sorted(cost, key=lambda n: (-cost[n], n)):
        i = 0 if totals[0] <= totals[1] else 1
        lanes[i].append(name)
        totals[i] += cost[name]
    return lanes


# A report takes a second pooled connection only while fewer than this many reports of the
# process hold one (and a quarter of the pool's size at most: none under 4): however many
# reports run, the pool (RELANCE_DB_POOL_SIZE plus as many in overflow) keeps connections
# for the other requests, and no report waits for a second connection held by another
# report that waits too.
SPARE_CONNECTIONS = 2
_spares: weakref.WeakKeyDictionary[Any, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _spare(conn: AsyncConnection) -> asyncio.Semaphore | None:
    """A slot for a second connection of the caller's engine, or None when none is free."""
    engine = conn.engine.sync_engine
    slots = _spares.get(engine)
    if slots is None:
        slots = _spares[engine] = asyncio.Semaphore(spare_slots(engine.pool))
    # Checked and then taken without an await in between: never waits.
    return None if slots.locked() else slots


def spare_slots(pool: Any) -> int:
    """How many reports may hold a second connection of this pool at once."""
    size = getattr(pool, "size", None)  # a pool without a size opens what it is asked for
    return SPARE_CONNECTIONS if size is None else min(SPARE_CONNECTIONS, size() // 4)


async def _tune(conn: AsyncConnection) -> None:
    # The passes are large aggregates whose estimated cost triggers JIT compilation, which
    # took longer (about 1 s each) than the query it compiled on the benchmark; their medians
    # sort up to a period's rows, spilled to disk under the default 4 MB. LOCAL: for the rest
    # of the transaction only.
    await conn.exec_driver_sql("SET LOCAL jit = off")
    await conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")


def _num(raw: Mapping[str, Any], key: str) -> float:
    value = raw.get(key)
    return float(value) if value is not None else 0.0


def _count(raw: Mapping[str, Any], key: str) -> int:
    return int(_num(raw, key))


def _part(num: float, count: int) -> tuple[float | None, int]:
    return (num / count if count else None), count


def _status(key: str, value: float | None, target: float | None) -> Status | None:
    if value is None or target is None:
        return None
    lower = key in LOWER_IS_BETTER
    if (value <= target) if lower else (value >= target):
        return "ok"
    return "watch" if abs(value - target) < WATCH_MARGIN * abs(target) else "bad"


def _kpi(
    key: str,
    figure: tuple[float | None, int],
    kpi_settings: KpiSettings,
    breakdown: dict[str, Part] | None = None,
    indicative: list[str] | None = None,
) -> Kpi:
    value, count = figure
    if count == 0:
        value = None
    if value is not None:
        value = round(value, 6)
    target = kpi_settings.targets.get(key)
    return Kpi(
        value=value,
        count=count,
        target=target,
        status=_status(key, value, target),
        unit=KPI_UNITS[key],
        breakdown=breakdown,
        indicative_languages=indicative,
    )


def _lists(raw: Mapping[str, Any], name: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = raw.get(name, [])
    return rows


def _sum_rows(rows: Iterable[Mapping[str, Any]], key: str) -> int:
    return sum(_count(r, key) for r in rows)


def _figures(raw: Mapping[str, Any], kpi_settings: KpiSettings) -> dict[str, Kpi]:
    """Every KPI of one bucket (or the whole period) from its passes' sums."""
    n = _count
    fr_n, reply_n, res_n, resolved = (
        n(raw, "fr_n"),
        n(raw, "reply_n"),
        n(raw, "res_n"),
        n(raw, "resolved_n"),
    )
    orders_n, sent = n(raw, "orders_n"), n(raw, "sent_n")
    reviews_rows, decisions = _lists(raw, "reviews"), _lists(raw, "decisions")
    nps_n = n(raw, "nps_n") + _sum_rows(reviews_rows, "nps_n")
    nps_net = (
        n(raw, "nps_pro") - n(raw, "nps_det")
        + _sum_rows(reviews_rows, "nps_pro") - _sum_rows(reviews_rows, "nps_det")
    )  # fmt: skip
    figures: dict[str, tuple[float | None, int]] = {
        "acknowledged_24h_rate": _part(_num(raw, "ack_ok"), n(raw, "ack_n")),
        "first_reply_business_s_mean": _part(_num(raw, "fr_b_sum"), fr_n),
        "first_reply_business_s_median": (raw.get("fr_b_median"), fr_n),
        "first_reply_calendar_s_mean": _part(_num(raw, "fr_c_sum"), fr_n),
        "first_reply_calendar_s_median": (raw.get("fr_c_median"), fr_n),
        "reply_business_s_mean": _part(_num(raw, "reply_sum"), reply_n),
        "reply_business_s_median": (raw.get("reply_median"), reply_n),
        "response_rate": _part(_num(raw, "answered_n"), n(raw, "need_n")),
        "resolution_s_mean": _part(_num(raw, "res_sum"), res_n),
        "resolution_s_median": (raw.get("res_median"), res_n),
        "exchanges_per_ticket": _part(_num(raw, "exch_sum"), resolved),
        "first_contact_resolution_rate": _part(_num(raw, "fcr_n"), resolved),
        "reopen_rate": _part(_num(raw, "reopened_n"), resolved),
        "pre_sale_contact_rate": _part(_num(raw, "pre_n"), orders_n),
        "after_sale_contact_rate": _part(_num(raw, "after_n"), orders_n),
        "complaint_rate": _part(_num(raw, "complaint_n"), orders_n),
        "return_rate": _part(_num(raw, "returned_n"), n(raw, "delivered_n")),
        "csat": _part(_num(raw, "csat_ok"), n(raw, "csat_n")),
        "nps": _part(100.0 * nps_net, nps_n),
        "speed_rating_mean": _part(_num(raw, "speed_sum"), n(raw, "speed_n")),
        "quality_rating_mean": _part(_num(raw, "quality_sum"), n(raw, "quality_n")),
        "conversion_after_pre_sale_rate": _part(_num(raw, "conv_n"), n(raw, "pre_n")),
        "review_requests_sent": (float(sent), sent),
        "review_click_rate": _part(_num(raw, "clicked_n"), sent),
        "review_rate": _part(_num(raw, "reviewed_n"), sent),
        "review_rating_mean": _part(_num(raw, "rating_sum"), n(raw, "reviewed_n")),
    }
    kpis = {key: _kpi(key, figure, kpi_settings) for key, figure in figures.items()}
    kpis["exchanges_per_ticket"].breakdown = {
        level: Part(
            value=_round(_part(_num(raw, f"exch_l{level}"), n(raw, f"resolved_l{level}"))[0]),
            count=n(raw, f"resolved_l{level}"),
        )
        for level in ("1", "2", "none")
    }
    for status in ("skipped", "cancelled"):
        rows = [r for r in decisions if r["status"] == status]
        total = _sum_rows(rows, "n")
        reasons: dict[str, int] = defaultdict(int)
        for row in rows:
            reasons[row["reason"] or "none"] += n(row, "n")
        kpis[f"review_requests_{status}"] = _kpi(
            f"review_requests_{status}",
            (float(total), total),
            kpi_settings,
            breakdown={r: Part(value=float(c), count=c) for r, c in sorted(reasons.items())},
        )
    messages_rows = [
        {"lang": lang, **{k: raw.get(f"sent_{k}_{lang}") for k in ("n", "pos", "neg")}}
        for lang in (*queries.SENTIMENT_LANGUAGES, queries.OTHER_LANGUAGE)
    ]
    kpis.update(_sentiment(messages_rows + reviews_rows, kpi_settings))
    return {key: kpis[key] for key in KPI_UNITS}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _sentiment(rows: list[dict[str, Any]], kpi_settings: KpiSettings) -> dict[str, Kpi]:
    """Positive and negative shares of the period's review and customer-message comments."""
    by_lang: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for row in rows:
        known = row["lang"] in queries.SENTIMENT_LANGUAGES
        counts = by_lang[row["lang"] if known else queries.OTHER_LANGUAGE]
        for i, key in enumerate(("n", "pos", "neg")):
            counts[i] += _count(row, key)
    by_lang = {lang: c for lang, c in by_lang.items() if c[0]}
    accuracy = sentiment_accuracy()
    indicative = sorted(lang for lang in by_lang if accuracy.get(lang, 0.0) < INDICATIVE_BELOW)
    total = sum(c[0] for c in by_lang.values())
    found = {}
    for index, key in ((1, "sentiment_positive_share"), (2, "sentiment_negative_share")):
        parts = {
            lang: Part(value=_round(c[index] / c[0]), count=c[0])
            for lang, c in sorted(by_lang.items())
        }
        share = _part(float(sum(c[index] for c in by_lang.values())), total)
        found[key] = _kpi(key, share, kpi_settings, parts, indicative)
    return found


def sentiment_accuracy() -> dict[str, float]:
    """The analyser's measured accuracy per language (docs/sentiment.md)."""
    return dict(sentiment.ACCURACY)
