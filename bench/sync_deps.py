"""Evidence: what two `def` (sync) FastAPI dependencies cost per request.

    .venv/bin/python -m bench.sync_deps [--rounds 2] [--duration 5]

app/deps.py declares `get_settings` and `get_engine` as plain `def`, and the webhook endpoint
depends on both: FastAPI runs each in its threadpool (a thread hop and a GIL hand-off per
dependency per request). This serves bench/sync_deps_app.py — the bare baseline endpoint plus
two trivial dependencies — once with `def` and once with `async def` dependencies, under the
same wrk load as bench/ingest.py, alternating, and reports answers/s and server CPU per request.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from datetime import UTC, datetime
from typing import Any

from bench import common, ingest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args(argv)
    rounds = max(1, min(args.rounds, 10))
    duration = max(2.0, min(args.duration, 30.0))
    result: dict[str, Any] = {
        "benchmark": "sync_deps",
        "started_at": datetime.now(UTC).isoformat(),
        "machine": common.machine(),
        "runs": [],
    }
    with contextlib.ExitStack() as stack:
        work = common.temp_dir(stack, "relance-bench-deps-")
        factory = ingest.RequestFactory(
            {"id": "shp_x", "webhook_secret": "whsec_AAAA"}, 0.15, 1, 256
        )
        data = work / "requests.tsv"
        factory.write(data, 4000, "deps")
        for index in range(rounds):
            for mode in ("sync", "async"):
                env = dict(common.relance_env("unused"), BENCH_DEP_MODE=mode)
                server = ingest.start_uvicorn(f"deps-{mode}", "bench.sync_deps_app:app", env)
                try:
                    run = ingest.run_wrk(server.port, data, duration=duration,
                                         connections=args.connections, mode="cycle",
                                         pid=server.pid)  # fmt: skip
                finally:
                    server.stop()
                row = {
                    "round": index,
                    "dependencies": mode,
                    "answers_per_s": run["rps"],
                    "server_cpu_ms_per_request": run["cpu"]["server_cpu_ms_per_request"],
                    "p50_ms": run["latency_ms"]["p50"],
                }
                result["runs"].append(row)
                print(row, flush=True)
    path = common.write_result("sync_deps", result)
    print(f"result: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
