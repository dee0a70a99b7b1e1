"""Benchmark 3: claim and cancel with 1,000,000 scheduled requests in PostgreSQL.

    .venv/bin/python -m bench.scale [--requests 1000000] [--shops 1000] [--reps 200]

Bulk-loads (INSERT … SELECT generate_series, secondary indexes dropped during the load and
re-created from their own definitions, then VACUUM ANALYZE) a database migrated by
`relance migrate` with, over `--shops` shops:

  * `--requests` orders, each with a review request and its first delivery, scheduled in the
    future (spread over the next 30 days) — the rows a claim must NOT look at;
  * `--sent` older orders whose request was sent in the last 60 days (customers have several
    orders, so the cool-down lookup of the claim finds real history);
  * `--due` deliveries due a minute ago, spread over shops — what a claim takes.

Then it times, each repetition in its own transaction rolled back (so every repetition sees the
same data), `app.dispatch.service.claim(limit=20)` and `app.requests.service.cancel()` for a
random scheduled order; it reports median / p95 (target < 5 ms each), the share spent waiting
for the database, and the EXPLAIN (ANALYZE, BUFFERS) plan of every statement each one sends.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import sys
import time
from datetime import UTC, datetime
from typing import Any

from bench import common
from bench.common import SERVER_CPU, log
from bench.cpu import background_busy

TARGET_MS = 5.0
BIG_TABLES = ("orders", "review_requests", "deliveries", "shops")


async def load(dsn: str, args: argparse.Namespace) -> dict[str, Any]:
    import asyncpg

    from app.shops.settings import ShopSettings

    settings = ShopSettings(timezone="Europe/Paris", default_language="fr").model_dump_json()
    conn = await asyncpg.connect(dsn)
    timings: dict[str, float] = {}

    async def step(name: str, sql: str, *params: Any) -> None:
        t = time.perf_counter()
        await conn.execute(sql, *params)
        timings[name] = round(time.perf_counter() - t, 2)
        log(f"load: {name} {timings[name]}s")

    try:
        await conn.execute("SET synchronous_commit = off; SET maintenance_work_mem = '256MB'")
        indexes = await conn.fetch(
            """
            SELECT i.indexname, i.indexdef FROM pg_indexes i
            WHERE i.schemaname = 'public' AND i.tablename = ANY($1::text[])
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
            """,
            list(BIG_TABLES),
        )
        for row in indexes:
            await conn.execute(f'DROP INDEX "{row["indexname"]}"')
        n, shops, sent, due = args.requests, args.shops, args.sent, args.due
        shop_expr = "'shp_bench' || lpad((({g} - 1) % {shops})::text, 5, '0')"
        await step(
            "shops",
            f"""
            INSERT INTO shops (id, name, timezone, language, settings, created_at, updated_at)
            SELECT {shop_expr.format(g="g", shops=shops)}, 'Shop ' || g, 'Europe/Paris', 'fr',
                   $1::json, now(), now()
            FROM generate_series(1, {shops}) g
            """,
            settings,
        )
        # Orders 1..n: scheduled; n+1..n+sent: sent; n+sent+1..n+sent+due: due now.
        total = n + sent + due
        await step(
            "orders",
            f"""
            INSERT INTO orders (shop_id, order_id, reference, customer_id, email,
                email_normalized, firstname, lastname, language, currency, total_paid,
                ordered_at, products, state_id, state_name, history_id, state_at, paid_at,
                created_at, updated_at)
            SELECT {shop_expr.format(g="g", shops=shops)}, g, 'REF' || g, g % 400000,
                   'Client.' || (g % 400000) || '@Example.fr',
                   'client.' || (g % 400000) || '@example.fr', 'Marie', 'Dupont', 'fr', 'EUR',
                   '59.90', now() - interval '9 days',
                   '[{{"id": 12, "name": "Mug en grès", "reference": "MUG-01", "quantity": 1,
                      "id_product_attribute": 0, "url": "https://shop.example/12-mug.html",
                      "image_url": "https://shop.example/img/12.jpg"}}]'::json,
                   5, 'Delivered', g * 10 + 5, now() - interval '2 days',
                   now() - interval '8 days', now(), now()
            FROM generate_series(1, {total}) g
            """,
        )
        await step(
            "review_requests",
            f"""
            INSERT INTO review_requests (id, shop_id, order_id, email, email_normalized,
                language, status, source, trigger_history_id, trigger_at, due_at, sent_at,
                created_at, updated_at, public_id)
            SELECT g, {shop_expr.format(g="g", shops=shops)}, g,
                   'Client.' || (g % 400000) || '@Example.fr',
                   'client.' || (g % 400000) || '@example.fr', 'fr',
                   CASE WHEN g <= {n} THEN 'scheduled' WHEN g <= {n + sent} THEN 'sent'
                        ELSE 'scheduled' END,
                   'trigger', g * 10 + 5, now() - interval '2 days',
                   CASE WHEN g <= {n}
                        THEN now() + interval '1 hour' + (g % 43200) * interval '1 minute'
                        WHEN g <= {n + sent} THEN now() - (g % 86400) * interval '1 minute'
                        ELSE now() - interval '1 minute' END,
                   CASE WHEN g > {n} AND g <= {n + sent}
                        THEN now() - (g % 86400) * interval '1 minute' END,
                   now(), now(), substr(md5(random()::text || g::text), 1, 22)
            FROM generate_series(1, {total}) g
            """,
        )
        await step(
            "deliveries",
            """
            INSERT INTO deliveries (id, request_id, shop_id, kind, seq, status, due_at, attempts,
                message_id, sent_at, created_at, updated_at)
            SELECT id, id, shop_id, 'first', 0, status, due_at,
                   CASE WHEN status = 'sent' THEN 1 ELSE 0 END,
                   CASE WHEN status = 'sent' THEN '<relance.' || id || '@bench>' END,
                   sent_at, now(), now()
            FROM review_requests
            """,
        )
        for table in ("review_requests", "deliveries"):
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        t = time.perf_counter()
        for row in indexes:
            await conn.execute(row["indexdef"])
        timings["indexes"] = round(time.perf_counter() - t, 2)
        log(f"load: re-created {len(indexes)} indexes in {timings['indexes']}s")
        await step("vacuum_analyze", "VACUUM ANALYZE")
        sizes = {
            r["relname"]: {"rows": r["n_live_tup"], "total_bytes": r["size"]}
            for r in await conn.fetch(
                """
                SELECT relname, n_live_tup, pg_total_relation_size(relid) AS size
                FROM pg_stat_user_tables WHERE relname = ANY($1::text[])
                """,
                list(BIG_TABLES),
            )
        }
    finally:
        await conn.close()
    return {
        "timings_s": timings,
        "tables": sizes,
        "indexes_rebuilt": [r["indexname"] for r in indexes],
    }


class Recorder:
    """Statement capture and database-wait timing through SQLAlchemy cursor events."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.capture = False
        self.statements: list[tuple[str, Any]] = []
        self.db_seconds = 0.0
        self.count = 0
        self._started: float = 0.0
        event.listen(engine.sync_engine, "before_cursor_execute", self._before)
        event.listen(engine.sync_engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, cursor: Any, statement: str, params: Any, *rest: Any) -> None:
        if self.capture:
            self.statements.append((statement, params))
        self._started = time.perf_counter()

    def _after(self, *rest: Any) -> None:
        self.db_seconds += time.perf_counter() - self._started
        self.count += 1


async def measure(dsn: str, args: argparse.Namespace) -> dict[str, Any]:
    from app.db import create_engine, utcnow
    from app.dispatch import service as dispatch
    from app.requests import service as requests

    engine = create_engine(common.sa_url(dsn), pool_size=2)
    recorder = Recorder(engine)
    rng = random.Random(7)
    results: dict[str, Any] = {}

    async def claim_once(conn: Any) -> int:
        # What the first claim of a tick does: look for expired leases and for the shops
        # with e-mails due.
        batch = await dispatch.claim(
            conn, worker="bench", now=utcnow(), lease=120, limit=20, message_domain="bench"
        )
        due_shops[:] = batch.due_shops
        return len(batch.claims)

    async def claim_steady(conn: Any) -> int:
        # What the other claims of a tick do: the shops with e-mails due read at most once a
        # second (`jobs.DUE_SHOPS_EVERY`), expired leases every 10 s.
        batch = await dispatch.claim(
            conn, worker="bench", now=utcnow(), lease=120, limit=20, message_domain="bench",
            take_over=False, due_shops=due_shops,
        )  # fmt: skip
        return len(batch.claims)

    due_shops: list[str] = []

    def cancel_once_factory() -> Any:
        g = rng.randint(1, args.requests)

        async def cancel_once(conn: Any) -> int:
            ids = await requests.cancel(conn, _shop(g), g, "order_cancelled", utcnow())
            return len(ids)

        return cancel_once

    def _shop(g: int) -> str:
        return f"shp_bench{(g - 1) % args.shops:05d}"

    try:
        for name, make, expected in (
            ("claim", lambda: claim_once, 20),
            ("claim_steady", lambda: claim_steady, 20),
            ("cancel", cancel_once_factory, 1),
        ):
            # Warm-up: connection, prepared statements, SQLAlchemy's compiled cache.
            for _ in range(10):
                async with engine.connect() as conn:
                    trans = await conn.begin()
                    await make()(conn)
                    await trans.rollback()
            times, db_times, counts = [], [], []
            deadline = time.monotonic() + args.max_seconds
            for _ in range(args.reps):
                if time.monotonic() > deadline:
                    break
                fn = make()
                async with engine.connect() as conn:
                    trans = await conn.begin()
                    recorder.db_seconds = 0.0
                    t = time.perf_counter()
                    counts.append(await fn(conn))
                    times.append(time.perf_counter() - t)
                    db_times.append(recorder.db_seconds)
                    await trans.rollback()
            stats = common.summary_ms(times)
            stats["db_wait_median_ms"] = round(sorted(db_times)[len(db_times) // 2] * 1000, 3)
            stats["rows_each"] = sorted(set(counts))
            stats["expected_rows_each"] = expected
            stats["verdict_median_lt_5ms"] = common.verdict(
                stats["median_ms"], TARGET_MS, higher_is_better=False
            )
            stats["verdict_p95_lt_5ms"] = common.verdict(
                stats["p95_ms"], TARGET_MS, higher_is_better=False
            )
            # The plans: capture one more run's statements, then EXPLAIN ANALYZE each, in order,
            # in one transaction rolled back (EXPLAIN ANALYZE executes the UPDATEs).
            recorder.statements, recorder.capture = [], True
            fn = make()
            async with engine.connect() as conn:
                trans = await conn.begin()
                await fn(conn)
                await trans.rollback()
            recorder.capture = False
            plans = await explain(engine, recorder.statements, "ANALYZE, BUFFERS")
            stats["statements"] = len(plans)
            stats["plans"] = plans
            stats["index_backed"] = all(not p["seq_scans_on_big_tables"] for p in plans)
            if args.profile:
                stats["profile"] = await profile_calls(name, engine, make, args)
            results[name] = stats
            log(
                f"{name}: median {stats['median_ms']} ms, p95 {stats['p95_ms']} ms over "
                f"{stats['n']} runs, {len(plans)} statements, index-backed: {stats['index_backed']}"
            )
    finally:
        await engine.dispose()
    return results


async def profile_calls(name: str, engine: Any, make: Any, args: argparse.Namespace) -> Any:
    """Sample this process with py-spy while it repeats the operation for a few seconds."""
    from bench import profiling

    out = common.RESULTS / f"scale-{name}.pyspy.txt"
    common.RESULTS.mkdir(parents=True, exist_ok=True)
    seconds = 8
    spy = profiling.record(os.getpid(), seconds, out)
    if spy is None:
        return {"skipped": "py-spy not installed"}
    deadline = time.monotonic() + seconds + 1
    calls = 0
    while time.monotonic() < deadline:
        async with engine.connect() as conn:
            trans = await conn.begin()
            await make()(conn)
            await trans.rollback()
        calls += 1
    await asyncio.to_thread(spy.wait, 60)
    summary: dict[str, Any] = profiling.summarize(
        out,
        {
            "ShopSettings validation (per claimed row)": "model_validate",
            "SQLAlchemy statement building (dml values/where)": "sqlalchemy/sql/",
            "SQLAlchemy cache key": "_generate_cache_key",
            "asyncpg": "asyncpg/",
            "_load": "_load (app/dispatch/service.py",
            "_attach_last_sent": "_attach_last_sent",
        },
    )
    summary.update(file=str(out), calls=calls)
    return summary


_SEQ = re.compile(r"Seq Scan on (\w+)")
_INDEX = re.compile(r"(?:Index|Index Only|Bitmap Index) Scan (?:Backward )?(?:using|on) (\w+)")
_EXEC = re.compile(r"Execution Time: ([\d.]+) ms")


async def explain(engine: Any, statements: list[Any], options: str) -> list[dict[str, Any]]:
    """EXPLAIN (options) of each recorded statement, in order, in one rolled-back transaction."""
    plans = []
    async with engine.connect() as conn:
        trans = await conn.begin()
        for statement, params in statements:
            rows = await conn.exec_driver_sql(
                f"EXPLAIN ({options}) {statement}", tuple(params or ())
            )
            plan = [r[0] for r in rows]
            plans.append({"statement": statement, "plan": plan, **_plan_facts(plan)})
        await trans.rollback()
    return plans


def _plan_facts(plan: list[str]) -> dict[str, Any]:
    text = "\n".join(plan)
    seq = sorted({m for m in _SEQ.findall(text) if m in BIG_TABLES and m != "shops"})
    match = _EXEC.search(text)
    return {
        "seq_scans_on_big_tables": seq,
        "indexes_used": sorted(set(_INDEX.findall(text))),
        "execution_ms": float(match.group(1)) if match else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--shops", type=int, default=1000)
    parser.add_argument("--sent", type=int, default=200_000)
    parser.add_argument("--due", type=int, default=50)
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--max-seconds", type=float, default=120, help="time bound per measure")
    parser.add_argument("--profile", action="store_true", help="py-spy while claiming")
    parser.add_argument("--output")
    args = parser.parse_args(argv)
    args.requests = max(1000, min(args.requests, 5_000_000))
    args.shops = max(1, min(args.shops, args.requests))
    args.due = max(20, min(args.due, 10_000))
    args.reps = max(10, min(args.reps, 5000))
    pinned = common.pin_self(SERVER_CPU)
    result: dict[str, Any] = {
        "benchmark": "scale",
        "started_at": datetime.now(UTC).isoformat(),
        "machine": common.machine(),
        "background_busy_pct_before": background_busy(2.0),
        "config": {
            "scheduled_requests": args.requests,
            "shops": args.shops,
            "sent_requests": args.sent,
            "due_deliveries": args.due,
            "repetitions": args.reps,
            "claim_limit": 20,
            "client_cpu": SERVER_CPU if pinned else None,
        },
        "target_ms": TARGET_MS,
    }
    with contextlib.ExitStack() as stack:
        dsn = common.create_database(stack, "bench_scale")
        common.migrate(common.relance_env(common.sa_url(dsn)))
        log(f"loading {args.requests} scheduled requests over {args.shops} shops")
        t = time.perf_counter()
        result["load"] = asyncio.run(load(dsn, args))
        result["load"]["seconds"] = round(time.perf_counter() - t, 1)
        result["measures"] = asyncio.run(measure(dsn, args))
    path = common.write_result("scale", result, args.output)
    print_summary(result)
    print(f"\nresult: {path}")
    return 0


def print_summary(result: dict[str, Any]) -> None:
    cfg = result["config"]
    print(
        f"\n== scale: {cfg['scheduled_requests']:,} scheduled requests over {cfg['shops']} shops "
        f"(+{cfg['sent_requests']:,} sent, {cfg['due_deliveries']} due) =="
    )
    print(f"background load before the run: {result['background_busy_pct_before']}%")
    print(f"load: {result['load']['seconds']} s {result['load']['timings_s']}")
    print(f"{'operation':<12} {'median ms':>9} {'p95 ms':>7} {'db wait':>8} {'runs':>5} "
          f"{'stmts':>5}  index-backed  verdict (< {result['target_ms']} ms)")  # fmt: skip
    for name, m in result["measures"].items():
        print(
            f"{name:<12} {m['median_ms']:>9.2f} {m['p95_ms']:>7.2f} {m['db_wait_median_ms']:>8.2f} "
            f"{m['n']:>5} {m['statements']:>5}  {m['index_backed']!s:<12}  "
            f"median {m['verdict_median_lt_5ms']}, p95 {m['verdict_p95_lt_5ms']}"
        )
        prof = m.get("profile") or {}
        if prof.get("samples"):
            print(f"   profile, self time by package: {prof['self_by_package_pct']}")
        for p in m["plans"]:
            first = p["statement"].split("\n")[0][:70]
            print(
                f"   {p['execution_ms']!s:>7} ms  {', '.join(p['indexes_used']) or '-':<60} {first}"
            )


if __name__ == "__main__":
    sys.exit(main())
