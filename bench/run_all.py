"""Run the three benchmarks one after the other and print one summary.

    .venv/bin/python -m bench.run_all [--quick] [--profile] [--only ingest,dispatch,scale]

Each benchmark runs as its own subprocess (`python -m bench.<name>`), creates and drops its own
databases, starts and stops its own servers, and writes bench/results/<name>-*.json; this script
collects those files into bench/results/all-*.json. `--quick` shrinks every benchmark (shorter
runs, fewer rows) to check the machinery in a few minutes; its figures are not the reference ones.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

from bench import common
from bench.common import PYTHON, log

QUICK = {
    "ingest": ["--duration", "5", "--rounds", "1", "--warmup", "1", "--paced-runs", "1"],
    "dispatch": ["--messages", "1000"],
    "scale": ["--requests", "100000", "--shops", "100", "--sent", "20000", "--reps", "50"],
}
TIMEOUTS = {"ingest": 1800, "dispatch": 3600, "scale": 2400}


def run_one(name: str, extra: list[str]) -> dict[str, Any]:
    out = common.RESULTS / f"{name}-run_all.json"
    out.unlink(missing_ok=True)
    cmd = [PYTHON, "-m", f"bench.{name}", "--output", str(out), *extra]
    log(f"running {' '.join(cmd[1:])}")
    start = time.monotonic()
    try:
        done = subprocess.run(cmd, cwd=common.ROOT, timeout=TIMEOUTS[name])
        code = done.returncode
    except subprocess.TimeoutExpired:
        code = -1
    seconds = round(time.monotonic() - start, 1)
    if code != 0 or not out.exists():
        return {"ok": False, "exit_code": code, "seconds": seconds}
    result: dict[str, Any] = json.loads(out.read_text())
    result["ok"] = True
    result["seconds"] = seconds
    return result


def summary_lines(results: dict[str, Any]) -> list[str]:
    lines = []
    ingest = results.get("ingest")
    if ingest and ingest.get("ok"):
        s = ingest["summary"]
        rates = s["accepted_per_s"]
        v = s["verdicts"]
        lines += [
            "ingest (signed webhooks, one server process on one core):",
            f"  Relance/PostgreSQL {rates['relance_pg']['median']:.0f}/s, asyncpg baseline "
            f"{rates['asyncpg_baseline']['median']:.0f}/s, bare FastAPI "
            f"{rates['bare_fastapi']['median']:.0f}/s (medians of rounds)",
            f"  Relance/asyncpg {s['relance_over_asyncpg_median_of_rounds']:.2f} (>= 0.5: "
            f"{v['relance/asyncpg >= 0.5']}), Relance/bare "
            f"{s['relance_over_bare_median_of_rounds']:.2f} (>= 0.25: {v['relance/bare >= 0.25']})",
            f"  paced at half rate: p50 {s['paced_p50_ms']:.1f} ms, p99 {s['paced_p99_ms']:.1f} ms "
            f"(<= 20 ms: {v['paced p99 <= 20 ms']})",
            f"  Relance/SQLite {s['sqlite_accepted_per_s'] or 0:.0f}/s; every 202 persisted: "
            f"{v['every 202 persisted, no stray rows']}",
        ]
    elif ingest:
        lines.append(f"ingest: FAILED (exit {ingest.get('exit_code')})")
    dispatch = results.get("dispatch")
    if dispatch and dispatch.get("ok"):
        lines.append("dispatch (due e-mails to a local SMTP sink):")
        for name, b in dispatch["backends"].items():
            lines.append(
                f"  {name}: Relance {b['relance']['per_s']:.0f}/s, aiosmtplib loop "
                f"{b['baseline_per_s']:.0f}/s, ratio {b['ratio']:.2f} "
                f"(>= 0.5: {common.verdict(b['ratio'], 0.5)}); sink check "
                f"{'ok' if b['check']['ok'] else b['check']['problems']}"
            )
    elif dispatch:
        lines.append(f"dispatch: FAILED (exit {dispatch.get('exit_code')})")
    scale = results.get("scale")
    if scale and scale.get("ok"):
        cfg = scale["config"]
        lines.append(
            f"scale ({cfg['scheduled_requests']:,} scheduled requests, {cfg['shops']} shops):"
        )
        for name, m in scale["measures"].items():
            lines.append(
                f"  {name}: median {m['median_ms']:.2f} ms, p95 {m['p95_ms']:.2f} ms "
                f"(< 5 ms: median {m['verdict_median_lt_5ms']}, p95 {m['verdict_p95_lt_5ms']}); "
                f"database {m['db_wait_median_ms']:.2f} ms; index-backed: {m['index_backed']}"
            )
    elif scale:
        lines.append(f"scale: FAILED (exit {scale.get('exit_code')})")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small, fast runs (smoke test)")
    parser.add_argument("--profile", action="store_true", help="py-spy profiles (ingest, dispatch)")
    parser.add_argument("--only", default="ingest,dispatch,scale")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = set(names) - set(QUICK)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    results: dict[str, Any] = {}
    for name in names:
        extra = list(QUICK[name]) if args.quick else []
        if args.profile and name in ("ingest", "dispatch"):
            extra.append("--profile")
        results[name] = run_one(name, extra)
    combined = {
        "benchmark": "all",
        "finished_at": datetime.now(UTC).isoformat(),
        "quick": args.quick,
        "results": results,
    }
    path = common.write_result("all", combined)
    print("\n==================== Relance benchmarks: summary ====================")
    for line in summary_lines(results):
        print(line)
    print(f"\nresults: {path}")
    return 0 if all(r.get("ok") for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
