"""Benchmark 1: signed order-status webhooks into ONE `relance serve` process.

    .venv/bin/python -m bench.ingest [--duration 12] [--connections 64] [--no-sqlite] [--profile]

Load: wrk (1 thread, pinned to CPU 1) replays pre-signed requests (Standard Webhooks, unique
webhook-ids, bodies shaped like tests/factories.py `order_event`): every order gets a Delivered
event (which schedules a review request) and `--cancel-ratio` of them get a Canceled event a
little later (which cancels it). The server is pinned to CPU 0. In the same run, for the ratios:

  (a) bench/baseline_bare.py     — FastAPI endpoint that only parses the JSON and answers 202
  (b) bench/baseline_asyncpg.py  — the same SQL as Relance's hot path on raw ASGI + asyncpg,
                                   against its own database migrated by `relance migrate`

then Relance on PostgreSQL at full speed, Relance paced at half that rate (latency; three runs,
the one with the median p99 is reported), and
Relance on a SQLite file. Each database run is checked afterwards: every 202 answer's event_id
is in webhook_events, and rows beyond the 202 answers are at most the requests still in flight
when wrk stopped. Results: stdout summary + bench/results/ingest-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import common, profiling
from bench.common import LOAD_CPU, PRODUCTS, PYTHON, RELANCE, SERVER_CPU, log
from bench.cpu import CpuMeter, background_busy

LUA = Path(__file__).with_name("webhooks.lua")
# Issue 9, item 3 (group commit): at least 2x the asyncpg baseline and 0.25 of the bare endpoint,
# p99 <= 50 ms at half the maximum rate.
TARGETS = {"asyncpg_ratio": 2.0, "bare_ratio": 0.25, "p99_ms": 50.0}
VERDICT_ASYNCPG = f"relance/asyncpg >= {TARGETS['asyncpg_ratio']}"
VERDICT_BARE = f"relance/bare >= {TARGETS['bare_ratio']}"
VERDICT_P99 = f"paced p99 <= {TARGETS['p99_ms']:.0f} ms"

STATES = {
    5: {"name": "Delivered", "paid": True, "shipped": True, "delivery": True, "logable": True},
    6: {"name": "Canceled", "paid": False, "shipped": False, "delivery": False, "logable": False},
}
SHIPPED = {
    "id": 4,
    "name": "Shipped",
    "paid": True,
    "shipped": True,
    "delivery": True,
    "logable": True,
}
LANGUAGES = ["fr", "fr", "fr", "en", "de", "es", "it"]


# --------------------------------------------------------------------------- request sets


def order_event(
    order_id: int, history_id: int, state_id: int, at: datetime, rng: random.Random
) -> dict[str, Any]:
    """Same shape as tests/factories.py `order_event`, with a distinct customer per order."""
    return {
        "type": "order.status_changed",
        "timestamp": at.isoformat(),
        "data": {
            "order": {
                "id": order_id,
                "reference": f"REF{order_id}",
                "id_lang": 1,
                "total_paid": f"{rng.randint(900, 25000) / 100:.2f}",
                "currency": "EUR",
                "date_add": (at - timedelta(days=5)).isoformat(),
            },
            "customer": {
                "id": order_id % 50_000 + 1,
                "email": f"Client.{order_id}@Example.fr ",
                "firstname": "Marie",
                "lastname": "Dupont",
                "language": LANGUAGES[order_id % len(LANGUAGES)],
            },
            "history": {"id": history_id, "date_add": at.isoformat()},
            "new_state": {"id": state_id, **STATES[state_id]},
            "old_state": SHIPPED if state_id == 5 else None,
            "products": PRODUCTS[: 1 + order_id % 2],
        },
    }


def _sign(key: bytes, msg_id: str, ts: int, body: bytes) -> str:
    mac = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


class RequestFactory:
    """Writes files of pre-signed requests; order ids never repeat within one database."""

    def __init__(self, shop: dict[str, Any], cancel_ratio: float, seed: int, lag: int) -> None:
        self.shop_id = shop["id"]
        self.key = base64.b64decode(shop["webhook_secret"].removeprefix("whsec_"))
        self.cancel_ratio = cancel_ratio
        self.rng = random.Random(seed)
        self.lag = lag
        self.next_order = 1
        self.batch = 0

    def write(self, path: Path, n: int, prefix: str) -> dict[str, Any]:
        """`n` requests; timestamps are now, so send them within 5 minutes."""
        self.batch += 1
        ts = int(time.time())
        at = datetime.now(UTC)
        url_path = f"/webhooks/prestashop/{self.shop_id}"
        pending: deque[tuple[int, int]] = deque()
        kinds = {5: 0, 6: 0}
        with path.open("w") as f:
            for index in range(n):
                if pending and pending[0][0] <= index:
                    _, order_id = pending.popleft()
                    state = 6
                else:
                    order_id = self.next_order
                    self.next_order += 1
                    state = 5
                    if self.rng.random() < self.cancel_ratio:
                        pending.append((index + self.lag, order_id))
                kinds[state] += 1
                event = order_event(order_id, order_id * 10 + state, state, at, self.rng)
                body = json.dumps(event).encode()
                msg_id = f"{prefix}-{self.batch}-{index}"
                f.write(f"{msg_id}\t{ts}\t{_sign(self.key, msg_id, ts, body)}\t{url_path}\t")
                f.write(body.decode())
                f.write("\n")
        return {
            "requests": n,
            "delivered_events": kinds[5],
            "cancel_events": kinds[6],
            "webhook_id_prefix": f"{prefix}-{self.batch}-",
        }


# --------------------------------------------------------------------------- wrk


def run_wrk(
    port: int,
    data: Path,
    *,
    duration: float,
    connections: int,
    mode: str = "once",
    delay_ms: float = 0.0,
    ids_out: Path | None = None,
    pid: int | None = None,
    database: str | None = None,
) -> dict[str, Any]:
    env = dict(os.environ)
    env.update(
        BENCH_DATA=str(data),
        BENCH_MODE=mode,
        BENCH_DELAY_MS=f"{delay_ms:.3f}",
        BENCH_CONNECTIONS=str(connections),
    )
    if ids_out is not None:
        env["BENCH_IDS_OUT"] = str(ids_out)
    cmd = common.pinned(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "--timeout",
            "10s",
            "-s",
            str(LUA),
            f"http://127.0.0.1:{port}",
        ],
        LOAD_CPU,
    )
    meter = CpuMeter(pid, database)
    meter.start()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=duration + 120)
    cpu = meter.stop()
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
    seconds = result["duration_us"] / 1e6
    statuses = {int(k): v for k, v in result["statuses"].items()}
    result["statuses"] = statuses
    ok = statuses.get(202, 0)
    result["seconds"] = round(seconds, 3)
    result["rps"] = round(result["requests"] / seconds, 1)
    result["accepted_rps"] = round(ok / seconds, 1)
    result["non_202"] = result["requests"] - ok
    result["latency_ms"] = {k: round(v / 1000, 3) for k, v in result.pop("latency_us").items()}
    # CPU per answered request: robust to other tenants taking CPU time away from us.
    answered = max(result["requests"], 1)
    cpu["server_cpu_ms_per_request"] = round(
        cpu["server_cpu_pct_of_one_core"] * 10 * seconds / answered, 3
    )
    if "postgres_ours_cpu_pct_of_one_core" in cpu:
        cpu["postgres_cpu_ms_per_request"] = round(
            cpu["postgres_ours_cpu_pct_of_one_core"] * 10 * seconds / answered, 3
        )
    result["cpu"] = cpu
    return result


def _needed(rate: float, duration: float) -> int:
    return int(rate * duration * 1.4) + 3000


# --------------------------------------------------------------------------- verification


async def _pg_check(dsn: str, prefix: str, ids: list[int]) -> dict[str, Any]:
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(dsn)
    try:
        like = prefix.replace("_", r"\_") + "%"
        count = await conn.fetchval(
            "SELECT count(*) FROM webhook_events WHERE webhook_id LIKE $1", like
        )
        found = await conn.fetchval(
            "SELECT count(*) FROM webhook_events WHERE id = ANY($1::bigint[]) "
            "AND webhook_id LIKE $2",
            ids,
            like,
        )
        outcomes = dict(
            await conn.fetch(
                "SELECT outcome, count(*) FROM webhook_events WHERE webhook_id LIKE $1 "
                "GROUP BY outcome ORDER BY 2 DESC",
                like,
            )
        )
        # A group-committed batch stamps its events with one `received_at` (its `now`).
        batches = await conn.fetchval(
            "SELECT count(DISTINCT received_at) FROM webhook_events WHERE webhook_id LIKE $1",
            like,
        )
    finally:
        await conn.close()
    return {
        "db_events": count,
        "ids_found": found,
        "outcomes": outcomes,
        "webhooks_per_batch": round(count / max(batches, 1), 1),
    }


def _sqlite_check(path: Path, prefix: str, ids: list[int]) -> dict[str, Any]:
    conn = sqlite3.connect(path, timeout=30)
    try:
        like = prefix + "%"
        count = conn.execute(
            "SELECT count(*) FROM webhook_events WHERE webhook_id LIKE ?", (like,)
        ).fetchone()[0]
        found = 0
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            found += conn.execute(
                f"SELECT count(*) FROM webhook_events WHERE webhook_id LIKE ? AND id IN "
                f"({','.join('?' * len(chunk))})",
                (like, *chunk),
            ).fetchone()[0]
        outcomes = dict(
            conn.execute(
                "SELECT outcome, count(*) FROM webhook_events WHERE webhook_id LIKE ? "
                "GROUP BY outcome ORDER BY 2 DESC",
                (like,),
            ).fetchall()
        )
        batches = conn.execute(
            "SELECT count(DISTINCT received_at) FROM webhook_events WHERE webhook_id LIKE ?",
            (like,),
        ).fetchone()[0]
    finally:
        conn.close()
    return {
        "db_events": count,
        "ids_found": found,
        "outcomes": outcomes,
        "webhooks_per_batch": round(count / max(batches, 1), 1),
    }


def verify(run: dict[str, Any], batch: dict[str, Any], ids_file: Path, db: str | Path) -> None:
    """Accept = persist: every 202's event is in the database; extras only from in-flight."""
    ids = [int(x) for x in ids_file.read_text().split()] if ids_file.exists() else []
    prefix = batch["webhook_id_prefix"]
    if isinstance(db, Path):
        check = _sqlite_check(db, prefix, ids)
    else:
        check = asyncio.run(_pg_check(db, prefix, ids))
    accepted = run["statuses"].get(202, 0)
    written = run["calls"] - 1  # wrk's start-up check calls request() once, never sent
    in_flight = max(0, written - run["requests"])
    extra = check["db_events"] - accepted
    problems = []
    if len(ids) != accepted:
        problems.append(f"{accepted} answers were 202 but {len(ids)} carried an event_id")
    if len(set(ids)) != len(ids):
        problems.append(f"{len(ids) - len(set(ids))} event ids were answered twice")
    if check["ids_found"] != len(set(ids)):
        problems.append(
            f"{len(set(ids)) - check['ids_found']} events answered 202 are NOT in the database"
        )
    if extra < 0:
        problems.append(f"{-extra} fewer events in the database than 202 answers")
    if extra > in_flight:
        problems.append(
            f"{extra} events in the database were never answered 202, more than the "
            f"{in_flight} requests in flight when wrk stopped"
        )
    if run["non_202"]:
        problems.append(f"{run['non_202']} answers were not 202: {run['statuses']}")
    if run["exhausted"]:
        problems.append("the request set ran out before the end (rate underestimated)")
    run["check"] = {
        **check,
        "accepted_202": accepted,
        "in_flight_at_stop": in_flight,
        "committed_but_unanswered": extra,
        "ok": not problems,
        "problems": problems,
    }


# --------------------------------------------------------------------------- servers


@dataclass
class Target:
    """One server under test, its request factory and where its events land."""

    name: str
    server: common.Server
    factory: RequestFactory
    db: str | Path | None  # PostgreSQL DSN, SQLite file, or None (no database)
    history: list[float] = field(default_factory=list)  # accepted/s of its measured runs

    @property
    def port(self) -> int:
        assert self.server.port is not None, "a server under test listens on a port"
        return self.server.port

    @property
    def database(self) -> str | None:
        return self.db.rsplit("/", 1)[1] if isinstance(self.db, str) else None


def start_relance(name: str, env: dict[str, str], logs: Path | None = None) -> common.Server:
    port = common.free_port()
    server = common.Server(
        name,
        common.pinned([RELANCE, "serve", "--host", "127.0.0.1", "--port", str(port)], SERVER_CPU),
        env,
        port,
        logs,
    )
    server.wait_http("/healthz")
    return server


def start_uvicorn(
    name: str, module: str, env: dict[str, str], logs: Path | None = None
) -> common.Server:
    port = common.free_port()
    cmd = [
        PYTHON,
        "-m",
        "uvicorn",
        module,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    server = common.Server(name, common.pinned(cmd, SERVER_CPU), env, port, logs)
    server.wait_http("/healthz")
    return server


def warm(target: Target, work: Path, args: argparse.Namespace, rate: float) -> None:
    if args.warmup <= 0:
        return
    data = work / f"{target.name}-warm.tsv"
    once = target.db is not None
    target.factory.write(data, _needed(rate, args.warmup) if once else 2000, f"warm-{target.name}")
    run_wrk(
        target.port,
        data,
        duration=args.warmup,
        connections=args.connections,
        mode="once" if once else "cycle",
    )


def measure(
    target: Target,
    work: Path,
    label: str,
    args: argparse.Namespace,
    *,
    expected_rate: float,
    delay_ms: float = 0.0,
) -> dict[str, Any]:
    """One measured wrk run (re-run once with more requests if the set ran out), checked."""
    data = work / f"{label}.tsv"
    ids_out = work / f"{label}.ids"
    once = target.db is not None
    result: dict[str, Any] = {}
    for attempt in range(2):
        n = _needed(expected_rate * (1 + 2 * attempt), args.duration) if once else 4000
        batch = target.factory.write(data, n, f"{label}-{args.run_id}-{attempt}")
        result = run_wrk(
            target.port,
            data,
            duration=args.duration,
            connections=args.connections,
            mode="once" if once else "cycle",
            delay_ms=delay_ms,
            ids_out=ids_out,
            pid=target.server.pid,
            database=target.database,
        )
        result["request_set"] = batch
        if target.db is not None:
            time.sleep(1.0)  # let the server finish the requests wrk abandoned at the end
            verify(result, batch, ids_out, target.db)
        if not result["exhausted"]:
            break
        log(f"{label}: request set exhausted, retrying with more")
    lat = result["latency_ms"]
    check = result.get("check")
    log(
        f"{label}: {result['accepted_rps']:.0f} accepted/s ({result['rps']:.0f} answers/s), "
        f"p50 {lat['p50']:.2f} ms, p99 {lat['p99']:.2f} ms, cpu {result['cpu']}"
        + ("" if check is None else f", check {'OK' if check['ok'] else check['problems']}")
        + ("" if check is None else f", {check['webhooks_per_batch']} webhooks per transaction")
    )
    return result


PROFILE_MARKERS = {
    "SQLAlchemy AsyncConnection.execute (incl. driver)": "execute (sqlalchemy/ext/asyncio",
    "SQLAlchemy statement compile (cache misses)": "compile (sqlalchemy",
    "SQLAlchemy cache key generation": "_generate_cache_key",
    "asyncpg protocol": "asyncpg/",
    "aiosqlite": "aiosqlite/",
    "webhook parse (json + pydantic)": "parse (app/webhooks/service.py",
    "shops.webhook_auth (incl. its query)": "webhook_auth",
    "Fernet decrypt of the webhook secret": "decrypt (app/security.py",
    "ShopSettings validation": "model_validate",
    "orders.apply_event": "apply_event",
    "requests.on_state": "on_state",
    "FastAPI routing/dependencies": "solve_dependencies",
    "sync dependency sent to the threadpool (event loop side)": "run_in_threadpool",
    "threadpool worker threads (anyio)": "WorkerThread.run",
    "SQLAlchemy DML values cache key": "visit_dml_values",
    "uvicorn HTTP protocol": "uvicorn/protocols",
    "group commit: a batch's transaction (webhooks/batching.py)": "GroupCommitter._commit",
    "the webhook route (body, parse, wait for the batch, answer)": "receive_webhook",
    "FastAPI telemetry check per request": "NativeTelemetry",
}


def profile_run(
    target: Target, work: Path, args: argparse.Namespace, rate: float
) -> dict[str, Any]:
    """A separate full-speed run sampled by py-spy (its figures are not used)."""
    common.RESULTS.mkdir(parents=True, exist_ok=True)
    out = common.RESULTS / f"ingest-{target.name}.pyspy.txt"
    data = work / f"{target.name}-profile.tsv"
    seconds = max(4.0, args.duration - 2)
    batch = target.factory.write(
        data, _needed(rate, seconds + 2), f"prof-{target.name}-{args.run_id}"
    )
    spy = profiling.record(target.server.pid, seconds, out)
    if spy is None:
        return {"skipped": "py-spy not installed (pip install py-spy into the venv)"}
    run = run_wrk(
        target.port,
        data,
        duration=seconds + 1,
        connections=args.connections,
        pid=target.server.pid,
        database=target.database,
    )
    try:
        spy.wait(timeout=60)
    except subprocess.TimeoutExpired:
        spy.kill()
    summary = profiling.summarize(out, PROFILE_MARKERS)
    summary["file"] = str(out)
    summary["run_accepted_rps"] = run["accepted_rps"]
    summary["run_cpu"] = run["cpu"]
    summary["request_set"] = batch["webhook_id_prefix"]
    return summary


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured run")
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds of bare / asyncpg / Relance"
    )
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per server")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--cancel-ratio", type=float, default=0.15)
    parser.add_argument(
        "--paced-runs", type=int, default=3, help="latency runs at half rate (median p99 reported)"
    )
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite run")
    parser.add_argument("--profile", action="store_true", help="also sample Relance with py-spy")
    parser.add_argument("--output", help="JSON result path (default bench/results/ingest-*.json)")
    parser.add_argument(
        "--compare-with",
        metavar="TREE",
        help="instead: this tree against another version of Relance side by side in one run "
        "(TREE: e.g. `git archive <commit> app migrations alembic.ini templates | tar -x -C "
        "TREE`), two servers, --rounds interleaved full-speed rounds, no baselines",
    )
    args = parser.parse_args(argv)
    args.duration = max(3.0, min(args.duration, 60.0))
    args.warmup = max(0.0, min(args.warmup, 10.0))
    args.rounds = max(1, min(args.rounds, 10))
    args.paced_runs = max(1, min(args.paced_runs, 10))
    args.run_id = f"{os.getpid()}{int(time.time()) % 100000}"
    if not shutil.which("wrk"):
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    if args.compare_with:
        return compare(args, Path(args.compare_with).resolve())

    result: dict[str, Any] = {
        "benchmark": "ingest",
        "started_at": datetime.now(UTC).isoformat(),
        "machine": common.machine(),
        "background_busy_pct_before": background_busy(2.0),
        "config": {
            "duration_s": args.duration,
            "rounds": args.rounds,
            "warmup_s": args.warmup,
            "connections": args.connections,
            "wrk_threads": 1,
            "cancel_ratio": args.cancel_ratio,
            "server_cpu": SERVER_CPU,
            "wrk_cpu": LOAD_CPU,
        },
        "targets": TARGETS,
    }
    rounds: list[dict[str, Any]] = []
    result["rounds"] = rounds
    with contextlib.ExitStack() as stack:
        work = common.temp_dir(stack, "relance-bench-ingest-")
        log(f"work dir {work}; background load {result['background_busy_pct_before']}%")
        relance_dsn = common.create_database(stack, "bench_ingest_relance")
        base_dsn = common.create_database(stack, "bench_ingest_asyncpg")
        sqlite_path = work / "relance.db"
        envs = {
            "relance_pg": common.relance_env(common.sa_url(relance_dsn)),
            "asyncpg": common.relance_env(common.sa_url(base_dsn)),
            "relance_sqlite": common.relance_env(f"sqlite+aiosqlite:///{sqlite_path}"),
        }
        shops = {}
        for key, env in envs.items():
            if key == "relance_sqlite" and args.no_sqlite:
                continue
            common.migrate(env)
            shops[key] = common.create_shop(env)

        def factory(key: str) -> RequestFactory:
            return RequestFactory(shops[key], args.cancel_ratio, 20261123, 4 * args.connections)

        def started(server: common.Server) -> common.Server:
            stack.callback(server.stop)
            return server

        bare = Target(
            "bare_fastapi",
            started(
                start_uvicorn(
                    "baseline-bare", "bench.baseline_bare:app", common.relance_env("unused")
                )
            ),
            factory("relance_pg"),
            None,
        )
        base = Target(
            "asyncpg_baseline",
            started(
                start_uvicorn(
                    "baseline-asyncpg",
                    "bench.baseline_asyncpg:app",
                    dict(envs["asyncpg"], BENCH_DSN=base_dsn),
                )
            ),
            factory("asyncpg"),
            base_dsn,
        )
        relance = Target(
            "relance_pg",
            started(start_relance("relance-pg", envs["relance_pg"])),
            factory("relance_pg"),
            relance_dsn,
        )
        order = [bare, base, relance]
        for t in order:
            warm(t, work, args, rate=3000)
        # Steady state: tables with planner statistics, as autovacuum provides within a minute
        # of the first writes (before that, see docs/performance.md: the cancel statement).
        for dsn in (base_dsn, relance_dsn):
            common.analyze(dsn)

        # Interleaved rounds; the order rotates so no target always runs first or last.
        for index in range(args.rounds):
            runs: dict[str, Any] = {}
            for t in order[index % 3 :] + order[: index % 3]:
                expected = max(t.history or [max(bare.history or [3000])])
                runs[t.name] = measure(t, work, f"{t.name}-r{index}", args, expected_rate=expected)
                t.history.append(runs[t.name]["accepted_rps"])
            rounds.append(
                {
                    "runs": runs,
                    "relance_over_asyncpg": round(
                        runs["relance_pg"]["accepted_rps"]
                        / runs["asyncpg_baseline"]["accepted_rps"],
                        3,
                    ),
                    "relance_over_bare": round(
                        runs["relance_pg"]["accepted_rps"] / runs["bare_fastapi"]["accepted_rps"], 3
                    ),
                    # The same ratios from server CPU per request (inverse), less sensitive to
                    # the share of the CPU other processes left us during each run.
                    "cpu_efficiency_relance_over_asyncpg": round(
                        runs["asyncpg_baseline"]["cpu"]["server_cpu_ms_per_request"]
                        / runs["relance_pg"]["cpu"]["server_cpu_ms_per_request"],
                        3,
                    ),
                    "cpu_efficiency_relance_over_bare": round(
                        runs["bare_fastapi"]["cpu"]["server_cpu_ms_per_request"]
                        / runs["relance_pg"]["cpu"]["server_cpu_ms_per_request"],
                        3,
                    ),
                }
            )
        bare.server.stop()
        base.server.stop()

        # Latency: Relance paced at half its (median) maximum rate.
        max_rate = statistics.median(relance.history)
        target_rate = max_rate / 2
        delay_ms = 1000.0 * args.connections / max(target_rate, 1.0)
        paced_runs = []
        for index in range(args.paced_runs):
            run = measure(
                relance, work, f"relance_pg_paced-{index}", args,
                expected_rate=target_rate, delay_ms=delay_ms,
            )  # fmt: skip
            run["target_rps"] = round(target_rate, 1)
            run["delay_ms_per_connection"] = round(delay_ms, 2)
            paced_runs.append(run)
        # The reported one is the run with the median p99 (all of them are in the JSON).
        paced = sorted(paced_runs, key=lambda r: r["latency_ms"]["p99"])[len(paced_runs) // 2]
        result["paced"] = paced
        result["paced_runs"] = paced_runs
        if args.profile:
            log("profiling Relance (PostgreSQL) with py-spy")
            result["profile_relance_pg"] = profile_run(relance, work, args, max_rate)
        relance.server.stop()

        if not args.no_sqlite:
            lite = Target(
                "relance_sqlite",
                started(start_relance("relance-sqlite", envs["relance_sqlite"])),
                factory("relance_sqlite"),
                sqlite_path,
            )
            warm(lite, work, args, rate=max_rate)
            result["sqlite"] = measure(lite, work, "relance_sqlite", args, expected_rate=max_rate)
            if args.profile:
                log("profiling Relance (SQLite) with py-spy")
                result["profile_relance_sqlite"] = profile_run(
                    lite, work, args, result["sqlite"]["accepted_rps"]
                )
            lite.server.stop()

    result["summary"] = summarize(result, bare, base, relance)
    path = common.write_result("ingest", result, args.output)
    print_summary(result)
    print(f"\nresult: {path}")
    return 0


def compare(args: argparse.Namespace, tree: Path) -> int:
    """This tree ("this") against the Relance in `tree` ("other"): same load, same checks,
    rounds interleaved (the order alternates), so their ratio is measured in the same run."""
    result: dict[str, Any] = {
        "benchmark": "ingest-compare",
        "started_at": datetime.now(UTC).isoformat(),
        "machine": common.machine(),
        "other_tree": str(tree),
        "background_busy_pct_before": background_busy(2.0),
        "rounds": [],
    }
    with contextlib.ExitStack() as stack:
        work = common.temp_dir(stack, "relance-bench-compare-")
        targets: dict[str, Target] = {}
        for name, extra in (("this", {}), ("other", {"PYTHONPATH": str(tree)})):
            dsn = common.create_database(stack, f"bench_compare_{name}")
            env = common.relance_env(common.sa_url(dsn), **extra)
            common.migrate(env)
            shop = common.create_shop(env)
            server = start_relance(f"relance-{name}", env)
            stack.callback(server.stop)
            factory = RequestFactory(shop, args.cancel_ratio, 20261123, 4 * args.connections)
            targets[name] = Target(name, server, factory, dsn)
        for t in targets.values():
            warm(t, work, args, rate=3000)
            assert isinstance(t.db, str)
            common.analyze(t.db)
        for index in range(args.rounds):
            order = ["this", "other"] if index % 2 == 0 else ["other", "this"]
            runs = {}
            for name in order:
                t = targets[name]
                expected = max(t.history or [1500.0])
                runs[name] = measure(t, work, f"{name}-r{index}", args, expected_rate=expected)
                t.history.append(runs[name]["accepted_rps"])
            cpu = {n: r["cpu"]["server_cpu_ms_per_request"] for n, r in runs.items()}
            result["rounds"].append(
                {
                    "runs": runs,
                    "this_over_other": round(
                        runs["this"]["accepted_rps"] / runs["other"]["accepted_rps"], 3
                    ),
                    "cpu_other_over_this": round(cpu["other"] / cpu["this"], 3),
                }
            )
    rounds = result["rounds"]
    result["summary"] = {
        "this_over_other_median": statistics.median(r["this_over_other"] for r in rounds),
        "cpu_other_over_this_median": statistics.median(r["cpu_other_over_this"] for r in rounds),
        "every 202 persisted, no stray rows": all(
            r["check"]["ok"] for rd in rounds for r in rd["runs"].values()
        ),
    }
    path = common.write_result("ingest-compare", result, args.output)
    print(f"\n== ingest: this tree against {tree}, one server each, interleaved rounds ==")
    print(f"background load before the run: {result['background_busy_pct_before']}% of the machine")
    for index, rd in enumerate(rounds):
        for name, r in rd["runs"].items():
            print(_row(f"r{index} {name}", r))
        print(
            f"   round {index}: this/other {rd['this_over_other']:.2f} (webhooks/s), "
            f"other/this {rd['cpu_other_over_this']:.2f} (server CPU per webhook)"
        )
    print(result["summary"])
    print(f"\nresult: {path}")
    return 0


def summarize(result: dict[str, Any], *targets: Target) -> dict[str, Any]:
    rounds = result["rounds"]
    rates = {
        t.name: {
            "median": round(statistics.median(t.history), 1),
            "best": max(t.history),
            "all": t.history,
        }
        for t in targets
    }
    ratio_asyncpg = statistics.median(r["relance_over_asyncpg"] for r in rounds)
    ratio_bare = statistics.median(r["relance_over_bare"] for r in rounds)
    cpu_ms = {
        t.name: statistics.median(
            rd["runs"][t.name]["cpu"]["server_cpu_ms_per_request"] for rd in rounds
        )
        for t in targets
    }
    paced = result["paced"]
    checks = [r["check"]["ok"] for rd in rounds for r in rd["runs"].values() if "check" in r]
    checks += [r["check"]["ok"] for r in result["paced_runs"]]
    if "sqlite" in result:
        checks.append(result["sqlite"]["check"]["ok"])
    return {
        "accepted_per_s": rates,
        "relance_over_asyncpg_median_of_rounds": round(ratio_asyncpg, 3),
        "relance_over_bare_median_of_rounds": round(ratio_bare, 3),
        "server_cpu_ms_per_request_median": cpu_ms,
        "cpu_efficiency_relance_over_asyncpg": round(
            statistics.median(r["cpu_efficiency_relance_over_asyncpg"] for r in rounds), 3
        ),
        "cpu_efficiency_relance_over_bare": round(
            statistics.median(r["cpu_efficiency_relance_over_bare"] for r in rounds), 3
        ),
        "paced_p50_ms": paced["latency_ms"]["p50"],
        "paced_p99_ms": paced["latency_ms"]["p99"],
        "paced_p99_ms_all_runs": [r["latency_ms"]["p99"] for r in result["paced_runs"]],
        "sqlite_accepted_per_s": result["sqlite"]["accepted_rps"] if "sqlite" in result else None,
        "verdicts": {
            VERDICT_ASYNCPG: common.verdict(ratio_asyncpg, TARGETS["asyncpg_ratio"]),
            VERDICT_BARE: common.verdict(ratio_bare, TARGETS["bare_ratio"]),
            VERDICT_P99: common.verdict(
                paced["latency_ms"]["p99"], TARGETS["p99_ms"], higher_is_better=False
            ),
            "every 202 persisted, no stray rows": "PASS" if all(checks) else "MISS",
        },
    }


def _row(name: str, r: dict[str, Any]) -> str:
    check = r.get("check")
    status = "-" if check is None else ("ok" if check["ok"] else "; ".join(check["problems"]))
    cpu = r["cpu"]
    pg = cpu.get("postgres_ours_cpu_pct_of_one_core", 0.0)
    return (
        f"{name:<24} {r['accepted_rps']:>10.0f} {r['latency_ms']['p50']:>8.2f} "
        f"{r['latency_ms']['p99']:>8.2f} {cpu['server_cpu_pct_of_one_core']:>9.0f}% "
        f"{cpu['server_cpu_ms_per_request']:>8.2f} {pg:>6.0f}% {cpu['machine_busy_pct']:>6.0f}% "
        f"{'-' if check is None else check['webhooks_per_batch']:>7}  {status}"
    )


def print_summary(result: dict[str, Any]) -> None:
    print("\n== ingest: signed order-status webhooks, one server process pinned to one core ==")
    print(f"background load before the run: {result['background_busy_pct_before']}% of the machine")
    print(
        f"{'run':<24} {'accepted/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'server cpu':>10} "
        f"{'pg cpu':>7} {'box':>7} {'per txn':>7}  check"
    )
    for index, rd in enumerate(result["rounds"]):
        for name, r in rd["runs"].items():
            print(_row(f"r{index} {name}", r))
        print(
            f"   round {index}: Relance/asyncpg {rd['relance_over_asyncpg']:.2f}, "
            f"Relance/bare {rd['relance_over_bare']:.2f}"
        )
    for index, run in enumerate(result["paced_runs"]):
        print(_row(f"relance_pg paced #{index}", run))
    if "sqlite" in result:
        print(_row("relance_sqlite", result["sqlite"]))
    s = result["summary"]
    v = s["verdicts"]
    for name, rate in s["accepted_per_s"].items():
        print(f"{name}: median {rate['median']:.0f}/s, best {rate['best']:.0f}/s")
    print(
        f"Relance/asyncpg = {s['relance_over_asyncpg_median_of_rounds']:.2f} "
        f"(median of rounds; target >= {TARGETS['asyncpg_ratio']}) {v[VERDICT_ASYNCPG]}"
    )
    print(
        f"Relance/bare    = {s['relance_over_bare_median_of_rounds']:.2f} "
        f"(median of rounds; target >= {TARGETS['bare_ratio']}) {v[VERDICT_BARE]}"
    )
    paced = result["paced"]
    print(
        f"paced at {paced['target_rps']:.0f}/s (achieved {paced['accepted_rps']:.0f}/s), "
        f"run with the median p99: p50 {s['paced_p50_ms']:.2f} ms, p99 {s['paced_p99_ms']:.2f} ms "
        f"(target <= {TARGETS['p99_ms']:.0f} ms) {v[VERDICT_P99]}"
    )
    if s["sqlite_accepted_per_s"] is not None:
        print(f"Relance on SQLite: {s['sqlite_accepted_per_s']:.0f} accepted/s")
    print(f"accept = persist check: {v['every 202 persisted, no stray rows']}")
    for key in ("profile_relance_pg", "profile_relance_sqlite"):
        prof = result.get(key)
        if prof and prof.get("samples"):
            print(f"{key}: self time by package {prof['self_by_package_pct']}")
            top = list(prof["self_top_pct"].items())[:8]
            print(f"   top self: {top}")
            print(f"   markers (inclusive %): {prof['markers_inclusive_pct']}")


if __name__ == "__main__":
    sys.exit(main())
