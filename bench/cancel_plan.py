"""Evidence: the plan of the cancel statement on a table PostgreSQL has not analyzed yet.

    .venv/bin/python -m bench.cancel_plan [--rows 2000]

Creates a database migrated by `relance migrate`, writes `--rows` scheduled requests with their
deliveries for one shop (as a new shop's first minutes of webhooks would), then runs
`app.requests.service.cancel()` for one order and shows the EXPLAIN (ANALYZE) plan of each
statement it sends — first before any ANALYZE (what happens until autovacuum's first pass over
the new tables), then after ANALYZE. Each cancel is rolled back. Result: stdout and
bench/results/cancel_plan-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from datetime import UTC, datetime
from typing import Any

from bench import common
from bench.common import log
from bench.scale import Recorder, explain


async def fill(dsn: str, shop_id: str, rows: int) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        # Plain INSERTs, no ANALYZE: the tables look like a new shop's after a few minutes.
        await conn.execute(
            f"""
            INSERT INTO review_requests (shop_id, order_id, email, email_normalized, language,
                status, source, trigger_history_id, trigger_at, due_at, created_at, updated_at,
                public_id)
            SELECT $1, g, 'c' || g || '@example.fr', 'c' || g || '@example.fr', 'fr',
                   'scheduled', 'trigger', g * 10 + 5, now(), now() + interval '2 days', now(),
                   now(), substr(md5(random()::text || g::text), 1, 22)
            FROM generate_series(1, {rows}) g
            """,
            shop_id,
        )
        await conn.execute(
            """
            INSERT INTO deliveries (request_id, shop_id, kind, seq, status, due_at, attempts,
                created_at, updated_at)
            SELECT id, shop_id, 'first', 0, 'scheduled', due_at, 0, now(), now()
            FROM review_requests ORDER BY id
            """
        )
    finally:
        await conn.close()


async def explain_cancel(dsn: str, shop_id: str, order_id: int) -> list[dict[str, Any]]:
    from app.db import create_engine, utcnow
    from app.requests import service

    engine = create_engine(common.sa_url(dsn), pool_size=1)
    recorder = Recorder(engine)
    try:
        # Warm-up on another order: connection, SQLAlchemy compilation, server-side prepare.
        async with engine.connect() as conn:
            trans = await conn.begin()
            await service.cancel(conn, shop_id, order_id + 1, "order_cancelled", utcnow())
            await trans.rollback()
        recorder.capture = True
        async with engine.connect() as conn:
            trans = await conn.begin()
            start = time.perf_counter()
            await service.cancel(conn, shop_id, order_id, "order_cancelled", utcnow())
            elapsed = time.perf_counter() - start
            await trans.rollback()
        recorder.capture = False
        plans: list[dict[str, Any]] = await explain(engine, recorder.statements, "ANALYZE")
        plans.append({"cancel_call_ms": round(elapsed * 1000, 3)})
        return plans
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--output")
    args = parser.parse_args(argv)
    args.rows = max(100, min(args.rows, 20_000))
    result: dict[str, Any] = {
        "benchmark": "cancel_plan",
        "started_at": datetime.now(UTC).isoformat(),
        "rows": args.rows,
    }
    with contextlib.ExitStack() as stack:
        dsn = common.create_database(stack, "bench_cancel_plan")
        env = common.relance_env(common.sa_url(dsn))
        common.migrate(env)
        shop = common.create_shop(env)
        asyncio.run(fill(dsn, shop["id"], args.rows))
        order_id = args.rows // 2
        log("cancel before ANALYZE")
        result["before_analyze"] = asyncio.run(explain_cancel(dsn, shop["id"], order_id))
        common.analyze(dsn)
        log("cancel after ANALYZE")
        result["after_analyze"] = asyncio.run(explain_cancel(dsn, shop["id"], order_id))
    path = common.write_result("cancel_plan", result, args.output)
    for phase in ("before_analyze", "after_analyze"):
        print(f"\n== {phase}: cancel() took {result[phase][-1]['cancel_call_ms']} ms ==")
        for p in result[phase][:-1]:
            print(p["statement"].split("\n")[0][:90] + " …")
            for line in p["plan"]:
                print("    " + line)
    print(f"\nresult: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
