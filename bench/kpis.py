"""The KPI report on a large shop: 1,000,000 tickets and 5,000,000 messages over two years.

    .venv/bin/python -m bench.kpis [--scale 1.0] [--runs 5] [--months 6]

Creates a PostgreSQL database migrated by `relance migrate` and one shop (Europe/Paris), then
fills it with set-based SQL (generate_series): `--scale` x 1,000,000 tickets with 5 messages
each, as many orders (two history entries each), half of them with a review request, a
delivery and 30 % of those with a review, 2 % with a return event. Computed columns are
filled as app/tickets/models.py defines them. After VACUUM (ANALYZE), it measures
`app.kpis.service.report` over the last `--months` months (`--runs` times, median), against a
baseline measured in the same run: bare `count(*)` over the same tickets and messages (the
least any report must read). It times each statement of the report and prints the slowest
one's EXPLAIN (ANALYZE, BUFFERS). `--scale 0.02` is a quick run. Target (issue 12): < 1 s.
Result: stdout and bench/results/kpis-*.json.

Then the write path through the API (target >= 500 messages/s): `--writers` concurrent
clients post `--messages` messages (customer and agent in turn, over tickets of their own)
to a second shop of the same database, through the app in-process (httpx over ASGI: the
app, its validation, timing recompute and the database; no HTTP server or network).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bench import common
from bench.common import log

END = date(2026, 11, 29)  # a Sunday: the data set's last day
DAYS = 730
TZ = "Europe/Paris"


def fill_sql(tickets: int) -> list[tuple[str, str]]:
    """(what, SQL) steps; $1 is the shop id. Every row derives from generate_series."""
    orders = tickets
    first = f"(timestamptz '{END.isoformat()} 23:00:00+00' - interval '{DAYS} days')"
    # Ticket g is created at an even spread over the two years, at a time of day that varies.
    t_at = f"{first} + (g::float8 / {tickets} * {DAYS}) * interval '1 day'"
    o_at = f"{first} + (g::float8 / {orders} * {DAYS}) * interval '1 day'"
    return [
        (
            "tickets",
            f"""
            INSERT INTO tickets (shop_id, external_id, customer_email, email_normalized,
                order_id, language, channel, category, level, level_detected, status, subject,
                created_at, updated_at, period_date, first_customer_at, first_needing_at,
                ack_deadline_at, first_reply_at, first_reply_business_s,
                first_reply_calendar_s, replies, exchanges, resolved_at, resolution_s,
                reopens, csat, nps, satisfaction_at)
            SELECT $1, 't' || g, 'c' || (g % {orders // 2 + 1}) || '@example.fr',
                'c' || (g % {orders // 2 + 1}) || '@example.fr', NULL,
                (ARRAY['fr','en','it','es','de'])[g % 5 + 1], 'email',
                (ARRAY['pre_sale','pre_sale','after_sale','after_sale','after_sale',
                       'after_sale','complaint','return','other','other'])[g % 10 + 1],
                CASE WHEN g % 7 = 0 THEN NULL ELSE 1 + (g % 3 = 0)::int END, true,
                CASE WHEN g % 5 = 0 THEN 'open' ELSE 'resolved' END, 'Subject',
                at, at, (at AT TIME ZONE '{TZ}')::date, at, at,
                at + interval '1 day' * (1 + g % 3),
                CASE WHEN g % 11 <> 0 THEN at + interval '1 second' * (600 + g % 90000) END,
                CASE WHEN g % 11 <> 0 THEN 600 + g % 90000 END,
                CASE WHEN g % 11 <> 0 THEN 600 + g % 90000 * 2 END,
                CASE WHEN g % 11 <> 0 THEN 1 + g % 3 ELSE 0 END, 2 + g % 7,
                CASE WHEN g % 5 <> 0 THEN at + interval '1 second' * (3600 + g % 400000) END,
                CASE WHEN g % 5 <> 0 THEN 3600 + g % 400000 END,
                (g % 13 = 0)::int,
                CASE WHEN g % 4 = 0 THEN 1 + g % 5 END,
                CASE WHEN g % 6 = 0 THEN g % 11 END,
                CASE WHEN g % 4 = 0 THEN at + interval '3 days' END
            FROM (SELECT g, {t_at} AS at FROM generate_series(1, {tickets}) g) s
            """,
        ),
        (
            "messages",
            f"""
            INSERT INTO ticket_messages (shop_id, ticket_id, external_id, author, public,
                automatic, body, language, sent_at, period_date, needs_reply,
                needs_reply_detected, needs_reply_rule, deadline_at, answered_by, answered_at,
                reply_business_s, reply_calendar_s, sentiment, speed_rating, quality_rating,
                rated_at, created_at)
            SELECT t.shop_id, t.id, 'm' || t.id || '-' || k,
                CASE WHEN k % 2 = 0 THEN 'customer' ELSE 'agent' END, true, false, NULL,
                t.language, m.at, (m.at AT TIME ZONE '{TZ}')::date,
                k % 2 = 0 AND k < 4, true, NULL,
                CASE WHEN k % 2 = 0 THEN m.at + interval '1 day' END,
                NULL,
                CASE WHEN k % 2 = 0 AND (t.id + k) % 9 <> 0 THEN m.at + interval '2 hours' END,
                CASE WHEN k % 2 = 0 AND (t.id + k) % 9 <> 0 THEN 7200 + t.id % 50000 END,
                CASE WHEN k % 2 = 0 AND (t.id + k) % 9 <> 0 THEN 7200 + t.id % 90000 END,
                CASE WHEN k % 2 = 0 THEN
                    (ARRAY['positive','neutral','negative'])[(t.id + k) % 3 + 1] END,
                CASE WHEN k % 2 = 1 AND t.id % 5 = 0 THEN 1 + t.id % 5 END,
                CASE WHEN k % 2 = 1 AND t.id % 5 = 0 THEN 1 + (t.id + 2) % 5 END,
                CASE WHEN k % 2 = 1 AND t.id % 5 = 0 THEN m.at + interval '1 day' END,
                m.at
            FROM tickets t CROSS JOIN generate_series(0, 4) k
            CROSS JOIN LATERAL (SELECT t.created_at + k * interval '2 hours' AS at) m
            WHERE t.shop_id = $1
            """,
        ),
        (
            "orders",
            f"""
            INSERT INTO orders (shop_id, order_id, email, email_normalized, products,
                state_id, history_id, state_at, ordered_at, created_at, updated_at)
            SELECT $1, g, 'c' || (g % {orders // 2 + 1}) || '@example.fr',
                'c' || (g % {orders // 2 + 1}) || '@example.fr', '[]', 5, 2,
                at + interval '3 days', CASE WHEN g % 50 <> 0 THEN at END, at, at
            FROM (SELECT g, {o_at} AS at FROM generate_series(1, {orders}) g) s
            """,
        ),
        (
            "order history",
            """
            INSERT INTO order_history (shop_id, order_id, history_id, state_id, paid, shipped,
                occurred_at, event_id)
            SELECT o.shop_id, o.order_id, h, CASE WHEN h = 1 THEN 2
                    WHEN o.order_id % 40 = 0 THEN 7 ELSE 5 END,
                true, h = 2, o.created_at + (h - 1) * interval '3 days', o.order_id * 2 + h
            FROM orders o CROSS JOIN generate_series(1, 2) h WHERE o.shop_id = $1
            """,
        ),
        (
            "return events",
            """
            INSERT INTO webhook_events (shop_id, webhook_id, type, order_id, occurred_at,
                received_at, outcome, payload)
            SELECT shop_id, 'ret-' || order_id, 'order.return_requested', order_id,
                state_at + interval '5 days', state_at + interval '5 days', 'recorded', '{}'
            FROM orders WHERE shop_id = $1 AND order_id % 50 = 7
            """,
        ),
        (
            "review requests",
            """
            INSERT INTO review_requests (shop_id, order_id, email, email_normalized, language,
                status, reason, source, trigger_history_id, trigger_at, due_at, sent_at,
                created_at, updated_at, public_id, dry_run)
            SELECT shop_id, order_id, email, email_normalized, 'fr',
                CASE WHEN order_id % 10 = 0 THEN 'skipped' ELSE 'sent' END,
                CASE WHEN order_id % 10 = 0 THEN 'excluded' END, 'trigger', 2, state_at,
                state_at + interval '2 days',
                CASE WHEN order_id % 10 <> 0 THEN state_at + interval '2 days' END,
                state_at, state_at + interval '2 days',
                substr(md5(order_id::text), 1, 22), false
            FROM orders WHERE shop_id = $1 AND order_id % 2 = 0
            """,
        ),
        (
            "deliveries",
            """
            INSERT INTO deliveries (request_id, shop_id, kind, seq, status, due_at, attempts,
                sent_at, clicked_at, created_at, updated_at, dry_run)
            SELECT id, shop_id, 'first', 0, 'sent', due_at, 1, sent_at,
                CASE WHEN id % 3 = 0 THEN sent_at + interval '1 day' END,
                created_at, updated_at, false
            FROM review_requests WHERE shop_id = $1 AND status = 'sent'
            """,
        ),
        (
            "reviews",
            """
            INSERT INTO reviews (shop_id, request_id, order_id, rating, comment, nps, status,
                language, sentiment, created_at, updated_at)
            SELECT shop_id, id, order_id, 1 + id % 5, 'ok', id % 11, 'published', 'fr',
                (ARRAY['positive','neutral','negative'])[id % 3 + 1],
                sent_at + interval '3 days', sent_at + interval '3 days'
            FROM review_requests WHERE shop_id = $1 AND status = 'sent' AND id % 10 < 3
            """,
        ),
    ]


async def vacuum(dsn: str) -> None:
    """VACUUM (ANALYZE), as autovacuum does soon after a bulk insert (its insert threshold):
    it sets the visibility map, without which no index-only scan skips the heap, and the
    measure would depend on whether autovacuum had come by yet."""
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute("VACUUM (ANALYZE)", timeout=3600)
    finally:
        await conn.close()


async def fill(dsn: str, shop_id: str, tickets: int) -> dict[str, float]:
    import asyncpg

    took = {}
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        for what, sql in fill_sql(tickets):
            start = time.perf_counter()
            await conn.execute(sql, shop_id, timeout=3600)
            took[what] = round(time.perf_counter() - start, 1)
            log(f"filled {what} in {took[what]} s")
    finally:
        await conn.close()
    return took


class Timer:
    """Each statement the report sends, with its time (SQLAlchemy cursor events)."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.capture = False
        self.statements: list[tuple[float, str, Any]] = []
        self._started = 0.0
        event.listen(engine.sync_engine, "before_cursor_execute", self._before)
        event.listen(engine.sync_engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, cursor: Any, statement: str, params: Any, *rest: Any) -> None:
        self._started = time.perf_counter()
        self._current = (statement, params)

    def _after(self, *rest: Any) -> None:
        if self.capture:
            self.statements.append((time.perf_counter() - self._started, *self._current))


async def measure(dsn: str, shop_id: str, months: int, runs: int) -> dict[str, Any]:
    from app.dashboard.overview import CHARTS
    from app.db import create_engine
    from app.kpis import service

    # The service's default pool (a pool under 4 lends no second connection to a report).
    engine = create_engine(common.sa_url(dsn), pool_size=10, command_timeout=600)
    timer = Timer(engine)
    end = END
    start = end - timedelta(days=round(months * 30.44) - 1)
    now = datetime.combine(end + timedelta(days=1), datetime.min.time(), UTC)
    result: dict[str, Any] = {"from": start.isoformat(), "to": end.isoformat()}
    try:
        async with engine.connect() as conn:
            report_s, sequential_s, baseline_s = [], [], []
            for i in range(runs + 1):  # the first run warms caches and compiled statements
                # As the API runs it (two connections), then on the caller's connection alone.
                t0 = time.perf_counter()
                report = await service.report(conn, shop_id, start, end, now=now, concurrent=True)
                elapsed = time.perf_counter() - t0
                await conn.rollback()
                t0 = time.perf_counter()
                alone = await service.report(conn, shop_id, start, end, now=now)
                sequential = time.perf_counter() - t0
                assert alone == report, "the two ways gave different reports"
                t0 = time.perf_counter()
                await conn.exec_driver_sql(
                    "SELECT (SELECT count(*) FROM tickets WHERE shop_id = $1 AND period_date "
                    "BETWEEN $2 AND $3), (SELECT count(*) FROM ticket_messages WHERE shop_id "
                    "= $1 AND period_date BETWEEN $2 AND $3)",
                    (shop_id, start, end),
                )
                base = time.perf_counter() - t0
                if i:
                    report_s.append(elapsed)
                    sequential_s.append(sequential)
                    baseline_s.append(base)
                await conn.rollback()
            timer.capture = True
            await service.report(conn, shop_id, start, end, now=now)
            timer.capture = False
            weekly_s = []
            for _ in range(3):
                await conn.rollback()
                t0 = time.perf_counter()
                await service.report(
                    conn, shop_id, start, end, now=now, granularity="week", concurrent=True
                )
                weekly_s.append(time.perf_counter() - t0)
            weekly = statistics.median(weekly_s)
            charts_s = []  # the dashboard's overview: the whole period and six weekly series
            for _ in range(3):
                await conn.rollback()
                t0 = time.perf_counter()
                await service.report(
                    conn, shop_id, start, end, now=now, granularity="week", concurrent=True,
                    series_keys=CHARTS,
                )  # fmt: skip
                charts_s.append(time.perf_counter() - t0)
            await conn.rollback()
        result["report"] = common.summary_ms(report_s)
        result["report_one_connection"] = common.summary_ms(sequential_s)
        result["baseline_count"] = common.summary_ms(baseline_s)
        result["ratio_to_baseline"] = round(
            statistics.median(report_s) / statistics.median(baseline_s), 2
        )
        result["weekly_series_ms"] = round(weekly * 1000, 1)
        result["weekly_charts_ms"] = round(statistics.median(charts_s) * 1000, 1)
        result["statements"] = [
            {"ms": round(s * 1000, 1), "statement": sql.split("\n")[0][:120]}
            for s, sql, _ in sorted(timer.statements, reverse=True, key=lambda x: x[0])
        ]
        slowest = max(timer.statements, key=lambda x: x[0])
        async with engine.connect() as conn:
            # The report's own settings (service.report), or the plan shows JIT compiling.
            await conn.exec_driver_sql("SET LOCAL jit = off")
            await conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")
            rows = await conn.exec_driver_sql(
                f"EXPLAIN (ANALYZE, BUFFERS) {slowest[1]}", tuple(slowest[2] or ())
            )
            result["slowest_plan"] = [r[0] for r in rows]
            result["slowest_statement"] = slowest[1]
        kpis = report.model_dump(by_alias=True)["kpis"]
        result["sample"] = {k: kpis[k]["value"] for k in ("response_rate", "nps", "csat")}
    finally:
        await engine.dispose()
    return result


async def write_path(dsn: str, api_key: str, shop_id: str, messages: int, writers: int) -> Any:
    import httpx

    from app.config import Settings
    from app.main import create_app

    settings = Settings(
        database_url=common.sa_url(dsn),
        scheduler="off",
        secret_key=common.SECRET_KEY,
        _env_file=None,  # type: ignore[call-arg]
    )
    app = create_app(settings)
    auth = {"Authorization": f"Bearer {api_key}"}
    base = f"/api/v1/shops/{shop_id}"
    per_ticket = 10
    tickets = max(writers, messages // per_ticket)
    start_at = datetime(2026, 11, 30, 8, tzinfo=UTC)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            ids = []
            for i in range(tickets):
                r = await client.post(
                    f"{base}/tickets",
                    headers=auth,
                    json={"external_id": f"w{i}", "customer_email": f"w{i}@example.fr",
                          "category": "after_sale", "language": "fr"},
                )  # fmt: skip
                r.raise_for_status()
                ids.append(r.json()["id"])
            failures = 0

            async def writer(mine: list[int], count: int) -> None:
                nonlocal failures
                for n in range(count):
                    ticket = mine[n // per_ticket % len(mine)]
                    k = n % per_ticket
                    r = await client.post(
                        f"{base}/tickets/{ticket}/messages",
                        headers=auth,
                        json={
                            "external_id": f"w{ticket}-{n}",
                            "author": "customer" if k % 2 == 0 else "agent",
                            "sent_at": (start_at + timedelta(minutes=k)).isoformat(),
                            "body": "Bonjour, où est mon colis ?" if k % 2 == 0 else "Il arrive.",
                            "language": "fr",
                        },
                    )
                    failures += r.status_code not in (200, 201)

            share = messages // writers
            t0 = time.perf_counter()
            await asyncio.gather(*(writer(ids[w::writers], share) for w in range(writers)))
            elapsed = time.perf_counter() - t0
    sent = share * writers
    return {
        "messages": sent,
        "writers": writers,
        "seconds": round(elapsed, 2),
        "messages_per_s": round(sent / elapsed, 1),
        "failures": failures,
        "verdict": common.verdict(sent / elapsed, 500.0),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = 1,000,000 tickets")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--months", type=int, default=6)
    parser.add_argument("--messages", type=int, default=3000, help="write path; 0: skip")
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--output")
    args = parser.parse_args(argv)
    tickets = max(1000, min(int(args.scale * 1_000_000), 5_000_000))
    runs, months = max(1, min(args.runs, 50)), max(1, min(args.months, 24))
    result: dict[str, Any] = {
        "benchmark": "kpis",
        "started_at": datetime.now(UTC).isoformat(),
        "tickets": tickets,
        "messages": tickets * 5,
        "machine": common.machine(),
        "postgres": common.pg_version(),
    }
    with contextlib.ExitStack() as stack:
        dsn = common.create_database(stack, "bench_kpis")
        env = common.relance_env(common.sa_url(dsn))
        common.migrate(env)
        shop = common.create_shop(env)
        result["fill_s"] = asyncio.run(fill(dsn, shop["id"], tickets))
        asyncio.run(vacuum(dsn))
        log(f"measuring the report over {months} months, {runs} runs")
        result.update(asyncio.run(measure(dsn, shop["id"], months, runs)))
        if args.messages > 0:
            writers = max(1, min(args.writers, 64))
            messages = max(writers, min(args.messages, 100_000))
            other = common.create_shop(env, "Writes")
            log(f"write path: {messages} messages, {writers} writers")
            result["write_path"] = asyncio.run(
                write_path(dsn, other["api_key"], other["id"], messages, writers)
            )
    median = result["report"]["median_ms"]
    result["verdict"] = common.verdict(median, 1000.0, higher_is_better=False)
    path = common.write_result("kpis", result, args.output)
    print(
        f"\n{tickets:,} tickets, {tickets * 5:,} messages; report {result['from']}..{result['to']}"
    )
    print(
        f"report median {median} ms ({result['verdict']} < 1000 ms); baseline count(*) "
        f"{result['baseline_count']['median_ms']} ms; ratio {result['ratio_to_baseline']}"
    )
    print(f"on one connection (no second lane): {result['report_one_connection']['median_ms']} ms")
    print(f"with a weekly series: {result['weekly_series_ms']} ms")
    print(f"with the overview's six weekly series: {result['weekly_charts_ms']} ms")
    print("statements (ms):")
    for s in result["statements"]:
        print(f"  {s['ms']:>8}  {s['statement']}")
    print("\nslowest statement's plan:")
    for line in result["slowest_plan"]:
        print("  " + line)
    if "write_path" in result:
        w = result["write_path"]
        print(
            f"\nwrite path: {w['messages']} messages by {w['writers']} writers in "
            f"{w['seconds']} s = {w['messages_per_s']}/s ({w['verdict']} >= 500), "
            f"{w['failures']} failures"
        )
    print(f"\nresult: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
