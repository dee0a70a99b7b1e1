"""Benchmark 2: due e-mails sent by the dispatcher to a local SMTP sink.

    .venv/bin/python -m bench.dispatch [--messages 10000] [--no-sqlite] [--profile]

10,000 due deliveries (one shop; paid, delivered, not cancelled orders; distinct customers, five
languages) are bulk-inserted, then `app.dispatch.jobs.Dispatcher(engine, settings).tick()` sends
them to an aiosmtpd sink running in a separate process (bench/smtp_sink.py, pinned to CPU 1; this
process is pinned to CPU 0), with RELANCE_MAIL_URL=smtp://127.0.0.1:PORT.

Baseline, in the same run: a bare aiosmtplib loop sending the same number of pre-rendered
messages (rendered beforehand by the dispatcher's own `_message`, i.e. the same templates and
MIME building) to the same sink over ONE reused connection, with the call the app's transport
uses for that message type (`send_message` for an EmailMessage, `sendmail` for bytes) — it runs
before and after each Relance run, and the ratio uses the mean of the two around it. A second,
informative baseline always sends bytes serialized beforehand (`sendmail`): the pure SMTP cost.

Checks: the sink received exactly N messages with N distinct Message-IDs during the Relance
run, and the database holds N deliveries and N requests marked sent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import common, profiling
from bench.common import LOAD_CPU, PRODUCTS, PYTHON, SERVER_CPU, log
from bench.cpu import background_busy

TARGET_RATIO = 0.5
LANGUAGES = ["fr", "en", "de", "es", "it"]


class Sink:
    """The SMTP sink subprocess and its stdin/stdout command channel."""

    def __init__(self, stack: contextlib.ExitStack, latency: float = 0.0) -> None:
        self.port = common.free_port()
        cmd = common.pinned(
            [PYTHON, "-m", "bench.smtp_sink", "--port", str(self.port), "--latency", str(latency)],
            LOAD_CPU,
        )
        self.proc = subprocess.Popen(
            cmd,
            cwd=common.ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        stack.callback(self.stop)
        line = self._readline(30)
        if line.strip() != "READY":
            raise RuntimeError(f"SMTP sink did not start: {line!r}")

    def _readline(self, timeout: float) -> str:
        import select

        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise RuntimeError("SMTP sink did not answer")
        return self.proc.stdout.readline()

    def command(self, text: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()
        answer: dict[str, Any] = json.loads(self._readline(30))
        return answer

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(Exception):
                assert self.proc.stdin is not None
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


# --------------------------------------------------------------------------- data


async def seed(engine: Any, shop_id: str, start: int, n: int, now: datetime) -> None:
    """`n` due deliveries: orders paid and delivered, a scheduled request each, due a minute ago."""
    from sqlalchemy import insert

    from app.db import transaction
    from app.orders.models import Order
    from app.requests.models import Delivery, ReviewRequest

    due = now - timedelta(minutes=1)
    trigger = now - timedelta(days=2, minutes=1)
    for chunk in range(start, start + n, 2000):
        ids = range(chunk, min(chunk + 2000, start + n))
        async with transaction(engine) as conn:
            await conn.execute(
                insert(Order),
                [
                    {
                        "shop_id": shop_id,
                        "order_id": i,
                        "reference": f"REF{i:08d}",
                        "customer_id": i,
                        "email": f"Client.{i}@Example.fr",
                        "email_normalized": f"client.{i}@example.fr",
                        "firstname": "Marie",
                        "lastname": "Dupont",
                        "language": LANGUAGES[i % 5],
                        "currency": "EUR",
                        "total_paid": "59.90",
                        "ordered_at": now - timedelta(days=7),
                        "products": PRODUCTS[: 1 + i % 2],
                        "state_id": 5,
                        "state_name": "Delivered",
                        "history_id": i * 10 + 5,
                        "state_at": trigger,
                        "paid_at": now - timedelta(days=6),
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in ids
                ],
            )
            rows = (
                await conn.execute(
                    insert(ReviewRequest).returning(
                        ReviewRequest.id, ReviewRequest.order_id, sort_by_parameter_order=True
                    ),
                    [
                        {
                            "shop_id": shop_id,
                            "order_id": i,
                            "email": f"Client.{i}@Example.fr",
                            "email_normalized": f"client.{i}@example.fr",
                            "language": LANGUAGES[i % 5],
                            "status": "scheduled",
                            "source": "trigger",
                            "trigger_history_id": i * 10 + 5,
                            "trigger_at": trigger,
                            "due_at": due,
                            "created_at": now,
                            "updated_at": now,
                        }
                        for i in ids
                    ],
                )
            ).all()
            await conn.execute(
                insert(Delivery),
                [
                    {
                        "request_id": r.id,
                        "shop_id": shop_id,
                        "kind": "first",
                        "seq": 0,
                        "status": "scheduled",
                        "due_at": due,
                        "attempts": 0,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for r in rows
                ],
            )


async def db_counts(engine: Any) -> dict[str, Any]:
    from sqlalchemy import func, select

    from app.db import transaction
    from app.requests.models import Delivery, ReviewRequest

    async with transaction(engine, read_only=True) as conn:
        deliveries = {
            status: count
            for status, count in await conn.execute(
                select(Delivery.status, func.count()).group_by(Delivery.status)
            )
        }
        requests = {
            status: count
            for status, count in await conn.execute(
                select(ReviewRequest.status, func.count()).group_by(ReviewRequest.status)
            )
        }
    return {"deliveries": deliveries, "requests": requests}


# --------------------------------------------------------------------------- runs


async def prerender(settings: Any, shop: dict[str, Any], n: int) -> list[Any]:
    """N messages rendered by the dispatcher's own code (same templates, same MIME building)."""
    from app.dispatch.jobs import Dispatcher
    from app.dispatch.service import Claim, OrderSnapshot
    from app.shops.settings import ShopSettings

    now = datetime.now(UTC)
    shop_settings = ShopSettings(timezone="Europe/Paris", default_language="fr").model_dump(
        mode="json"
    )
    dispatcher = Dispatcher(None, settings)  # type: ignore[arg-type]  # engine unused here
    messages = []
    for i in range(n):
        claim = Claim(
            delivery_id=10_000_000 + i,
            request_id=10_000_000 + i,
            public_id=f"bench{i}",
            reviewed=False,
            dkim=None,
            mail_server=None,
            mail_server_connections=None,
            shop_id=shop["id"],
            kind="first",
            seq=0,
            attempts=1,
            message_id=f"<relance.base{i}.{shop['id']}@{settings.message_id_domain}>",
            lease_until=now + timedelta(minutes=2),
            order_id=i,
            email=f"Client.{i}@Example.fr",
            email_normalized=f"client.{i}@example.fr",
            language=LANGUAGES[i % 5],
            trigger_at=now - timedelta(days=2),
            shop_name=shop["name"],
            shop_updated_at=now,
            raw_settings=shop_settings,
            order_row=OrderSnapshot(
                state_id=5,
                paid_at=now - timedelta(days=6),
                reference=f"REF{i:08d}",
                firstname="Marie",
                lastname="Dupont",
                products=PRODUCTS[: 1 + i % 2],
                ordered_at=now - timedelta(days=7),
            ),
        )
        messages.append((dispatcher._message(claim, now), claim.email))
    return messages


def _as_bytes(message: Any) -> bytes:
    """The wire bytes of what `Dispatcher._message` returns (an EmailMessage or bytes holder)."""
    data = getattr(message, "data", None)
    return data if isinstance(data, bytes) else bytes(message.as_bytes())


async def baseline(port: int, messages: list[Any], sender: str, raw: bool) -> dict[str, Any]:
    """One aiosmtplib connection, every message in a row; timed from connect to QUIT.

    Messages are sent the way the app's SMTP transport sends them: `send_message` for an
    `EmailMessage` (flattened on each call), `sendmail` for pre-serialized bytes. `raw=True`
    always sends bytes serialized beforehand (the pure SMTP cost).
    """
    import aiosmtplib

    payloads = [(_as_bytes(m), to) if raw else (m, to) for m, to in messages]
    start = time.perf_counter()
    cpu = time.process_time()
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=30)
    await client.connect()
    for message, to in payloads:
        if isinstance(message, bytes):
            await client.sendmail(sender, [to], message)
        elif isinstance(getattr(message, "data", None), bytes):
            await client.sendmail(sender, [to], message.data)
        else:
            await client.send_message(message, sender=sender, recipients=[to])
    await client.quit()
    seconds = time.perf_counter() - start
    return {
        "messages": len(payloads),
        "seconds": round(seconds, 3),
        "per_s": round(len(payloads) / seconds, 1),
        "cpu_ms_per_message": round(1000 * (time.process_time() - cpu) / len(payloads), 3),
        "message_type": type(messages[0][0]).__name__,
    }


async def baseline_concurrent(
    port: int, messages: list[Any], sender: str, connections: int
) -> dict[str, Any]:
    """`connections` bare aiosmtplib loops at once, each on its own connection, sharing the
    pre-built messages: what a sender that keeps that many conversations open reaches."""
    import aiosmtplib

    queue = [(_as_bytes(m), to) for m, to in messages]
    start = time.perf_counter()

    async def loop() -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=30)
        await client.connect()
        while queue:
            data, to = queue.pop()
            await client.sendmail(sender, [to], data)
        await client.quit()

    await asyncio.gather(*(loop() for _ in range(connections)))
    seconds = time.perf_counter() - start
    return {
        "messages": len(messages),
        "connections": connections,
        "seconds": round(seconds, 3),
        "per_s": round(len(messages) / seconds, 1),
    }


async def relance_run(engine: Any, settings: Any, n: int, timeout: float) -> dict[str, Any]:
    from app.dispatch.jobs import Dispatcher

    dispatcher = Dispatcher(engine, settings)
    start = time.perf_counter()
    cpu = time.process_time()
    stats = await asyncio.wait_for(dispatcher.tick(), timeout)
    seconds = time.perf_counter() - start
    return {
        "seconds": round(seconds, 3),
        "per_s": round(stats.sent / seconds, 1),
        "cpu_ms_per_message": round(1000 * (time.process_time() - cpu) / max(stats.sent, 1), 3),
        "tick": {
            "sent": stats.sent,
            "skipped": stats.skipped,
            "failed": stats.failed,
            "retried": stats.retried,
            "released": stats.released,
            "lost": stats.lost,
            "throttled": stats.throttled,
        },
    }


async def backend_run(
    name: str,
    url: str,
    shop: dict[str, Any],
    sink: Sink,
    messages: list[Any],
    args: argparse.Namespace,
) -> dict[str, Any]:
    from app.config import Settings
    from app.db import create_engine

    settings = Settings(
        database_url=url,
        mail_url=f"smtp://127.0.0.1:{sink.port}",
        scheduler="off",
        secret_key=common.SECRET_KEY,
        public_url="https://reviews.example.com",
        log_level="WARNING",
        smtp_concurrency=args.connections,
    )
    sender = settings.default_from
    # Through a slow sink one loop is bound by the latency alone: a sample of it is enough.
    single = messages if not args.smtp_latency else messages[: min(len(messages), 100)]
    engine = create_engine(url, settings.db_pool_size)
    out: dict[str, Any] = {"backend": name}
    try:
        log(f"{name}: seeding {args.messages} due deliveries")
        t = time.perf_counter()
        await seed(engine, shop["id"], 1, args.messages, datetime.now(UTC))
        out["seed_seconds"] = round(time.perf_counter() - t, 2)
        if name == "postgresql":
            await asyncio.to_thread(common.analyze, args.pg_dsn)

        sink.command("reset")
        before = await baseline(sink.port, single, sender, raw=False)
        log(f"{name}: baseline (before) {before['per_s']:.0f}/s")
        sink.command("reset")
        concurrent_before = await baseline_concurrent(sink.port, messages, sender, args.connections)
        log(f"{name}: {args.connections} bare loops (before) {concurrent_before['per_s']:.0f}/s")

        sink.command("reset")
        log(f"{name}: Relance dispatcher tick")
        relance = await relance_run(engine, settings, args.messages, args.timeout)
        relance["sink"] = sink.command("count")
        relance["database"] = await db_counts(engine)
        log(f"{name}: Relance {relance['per_s']:.0f}/s, sink {relance['sink']}")

        sink.command("reset")
        after = await baseline(sink.port, single, sender, raw=False)
        log(f"{name}: baseline (after) {after['per_s']:.0f}/s")

        sink.command("reset")
        raw = await baseline(sink.port, single, sender, raw=True)
        log(f"{name}: raw sendmail baseline {raw['per_s']:.0f}/s")

        sink.command("reset")
        concurrent = await baseline_concurrent(sink.port, messages, sender, args.connections)
        log(f"{name}: {args.connections} bare loops (after) {concurrent['per_s']:.0f}/s")
        concurrent_rate = statistics.mean([concurrent_before["per_s"], concurrent["per_s"]])

        base_rate = statistics.mean([before["per_s"], after["per_s"]])
        n = args.messages
        sink_counts = relance["sink"]
        problems = []
        if sink_counts["messages"] != n:
            problems.append(f"sink received {sink_counts['messages']} messages, expected {n}")
        if sink_counts["unique_message_ids"] != sink_counts["messages"]:
            problems.append("some Message-IDs were received twice")
        if relance["database"]["deliveries"].get("sent") != n:
            problems.append(f"deliveries sent in the database: {relance['database']['deliveries']}")
        if relance["database"]["requests"].get("sent") != n:
            problems.append(f"requests sent in the database: {relance['database']['requests']}")
        out.update(
            relance=relance,
            baseline_before=before,
            baseline_after=after,
            baseline_raw_bytes=raw,
            baseline_per_s=round(base_rate, 1),
            ratio=round(relance["per_s"] / base_rate, 3),
            baseline_concurrent=concurrent,
            baseline_concurrent_before=concurrent_before,
            baseline_concurrent_per_s=round(concurrent_rate, 1),
            ratio_to_concurrent=round(relance["per_s"] / concurrent_rate, 3),
            check={"ok": not problems, "problems": problems},
        )
        if args.profile:
            out["profile"] = await profile_tick(name, engine, settings, shop, args)
    finally:
        await engine.dispose()
    return out


async def profile_tick(
    name: str, engine: Any, settings: Any, shop: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    """A separate, smaller tick sampled by py-spy (its rate is not used)."""
    n = min(2000, args.messages)
    await seed(engine, shop["id"], 10_000_000, n, datetime.now(UTC))
    out = common.RESULTS / f"dispatch-{name}.pyspy.txt"
    common.RESULTS.mkdir(parents=True, exist_ok=True)
    seconds = 15
    spy = profiling.record(os.getpid(), seconds, out)
    if spy is None:
        return {"skipped": "py-spy not installed"}
    run = await relance_run(engine, settings, n, args.timeout)
    await asyncio.to_thread(spy.wait, 60)
    summary = profiling.summarize(
        out,
        {
            "claim (SQL + load)": "claim (app/dispatch/service.py",
            "mark_sent (SQL)": "mark_sent",
            "render templates": "render_review_request",
            "build MIME message": "build (app/mail/message.py",
            "SMTP send (aiosmtplib, incl. flatten)": "send (app/mail/transport.py",
            "email flatten (as_bytes)": "as_bytes",
            "SQLAlchemy": "sqlalchemy/",
            "transaction begin/commit": "transaction (app/db.py",
            "localized_date (babel)": "localized_date",
            "ShopSettings validation": "model_validate",
            "SQLAlchemy DML values cache key": "visit_dml_values",
            "asyncpg": "asyncpg/",
            "aiosqlite": "aiosqlite/",
        },
    )
    summary.update(file=str(out), run_per_s=run["per_s"], sampled_seconds=seconds)
    return summary


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument(
        "--smtp-latency",
        type=float,
        default=0.0,
        help="seconds the sink waits before answering DATA (a hosted relay: 0.1-0.2)",
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=10,
        help="RELANCE_SMTP_CONCURRENCY, and the concurrent bare loops of the baseline",
    )
    parser.add_argument("--timeout", type=float, default=1200, help="seconds per Relance tick")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--profile", action="store_true", help="also sample a tick with py-spy")
    parser.add_argument("--output")
    args = parser.parse_args(argv)
    args.messages = max(100, min(args.messages, 100_000))
    pinned = common.pin_self(SERVER_CPU)
    result: dict[str, Any] = {
        "benchmark": "dispatch",
        "started_at": datetime.now(UTC).isoformat(),
        "machine": common.machine(),
        "background_busy_pct_before": background_busy(2.0),
        "config": {
            "messages": args.messages,
            "dispatcher_cpu": SERVER_CPU if pinned else None,
            "sink_cpu": LOAD_CPU,
            "claim_batch": 20,
            "smtp_concurrency": args.connections,
            "smtp_latency": args.smtp_latency,
            "baseline_connections": args.connections,
        },
        "target_ratio": TARGET_RATIO,
        "backends": {},
    }
    with contextlib.ExitStack() as stack:
        work = common.temp_dir(stack, "relance-bench-dispatch-")
        sink = Sink(stack, args.smtp_latency)
        busy = result["background_busy_pct_before"]
        log(f"SMTP sink on port {sink.port}; background load {busy}%")
        args.pg_dsn = common.create_database(stack, "bench_dispatch")
        backends = [("postgresql", common.sa_url(args.pg_dsn))]
        if not args.no_sqlite:
            backends.append(("sqlite", f"sqlite+aiosqlite:///{work / 'relance.db'}"))
        shops = {}
        for name, url in backends:
            env = common.relance_env(url)
            common.migrate(env)
            shops[name] = common.create_shop(env, "Boutique Bench")
        os.environ["RELANCE_SECRET_KEY"] = common.SECRET_KEY

        from app.config import Settings

        render_settings = Settings(
            database_url="sqlite+aiosqlite://",
            secret_key=common.SECRET_KEY,
            public_url="https://reviews.example.com",
        )
        log(f"pre-rendering {args.messages} baseline messages")
        messages = asyncio.run(prerender(render_settings, shops["postgresql"], args.messages))

        for name, url in backends:
            result["backends"][name] = asyncio.run(
                backend_run(name, url, shops[name], sink, messages, args)
            )
    path = common.write_result("dispatch", result, args.output)
    print_summary(result)
    print(f"\nresult: {path}")
    return 0


def print_summary(result: dict[str, Any]) -> None:
    print("\n== dispatch: due e-mails -> local SMTP sink (separate process) ==")
    print(f"background load before the run: {result['background_busy_pct_before']}%")
    print(f"{'backend':<11} {'Relance/s':>9} {'base/s':>7} {'raw/s':>7} {'ratio':>6} "
          f"{'cpu ms/msg':>10}  check")  # fmt: skip
    for name, b in result["backends"].items():
        check = "ok" if b["check"]["ok"] else "; ".join(b["check"]["problems"])
        print(
            f"{name:<11} {b['relance']['per_s']:>9.0f} {b['baseline_per_s']:>7.0f} "
            f"{b['baseline_raw_bytes']['per_s']:>7.0f} {b['ratio']:>6.2f} "
            f"{b['relance']['cpu_ms_per_message']:>10.2f}  {check}"
        )
        print(
            f"{'':<11} baseline before {b['baseline_before']['per_s']:.0f}/s, after "
            f"{b['baseline_after']['per_s']:.0f}/s; ratio target >= {TARGET_RATIO}: "
            f"{common.verdict(b['ratio'], TARGET_RATIO)}"
        )
        c = b["baseline_concurrent"]
        latency = result["config"]["smtp_latency"]
        ceiling = f", ceiling {c['connections'] / latency:.0f}/s" if latency else ""
        before = b["baseline_concurrent_before"]["per_s"]
        print(
            f"{'':<11} SMTP latency {latency:g} s: {c['connections']} concurrent bare loops "
            f"{b['baseline_concurrent_per_s']:.0f}/s (before {before:.0f}, after "
            f"{c['per_s']:.0f}){ceiling}; Relance / concurrent = {b['ratio_to_concurrent']:.2f}"
        )
        if b.get("profile", {}).get("samples"):
            print(f"{'':<11} profile, self time by package: {b['profile']['self_by_package_pct']}")
            print(f"{'':<11} profile markers: {b['profile']['markers_inclusive_pct']}")


if __name__ == "__main__":
    sys.exit(main())
