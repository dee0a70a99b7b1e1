"""Shared plumbing of the benchmarks: databases, subprocess servers, CPU pinning, results.

Every helper is bounded in time, and everything a benchmark creates (databases, temporary
directories, processes) is registered on an ExitStack so it is removed even on failure or ^C.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
PYTHON = str(BIN / "python") if (BIN / "python").exists() else sys.executable
RELANCE = str(BIN / "relance")
RESULTS = ROOT / "bench" / "results"

PG_ADMIN_DSN = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
# A fixed key so the CLI (shop create) and the servers agree, without the dev-key warning.
SECRET_KEY = "relance-bench-secret-key-not-for-production-0123456789"

TASKSET = shutil.which("taskset")
NCPU = os.cpu_count() or 1
# The server under test gets CPU 0, the load generator (wrk / SMTP sink) CPU 1. PostgreSQL
# is not pinned: on a 2-core machine it shares both cores with them, as it would in production.
SERVER_CPU = 0
LOAD_CPU = 1 if NCPU > 1 else 0


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(cmd: Sequence[str], cpu: int) -> list[str]:
    """`cmd` prefixed with `taskset -c cpu` when taskset exists and the machine has that CPU."""
    if TASKSET and cpu < NCPU:
        return [TASKSET, "-c", str(cpu), *cmd]
    return list(cmd)


def pin_self(cpu: int) -> bool:
    if hasattr(os, "sched_setaffinity") and cpu < NCPU:
        os.sched_setaffinity(0, {cpu})
        return True
    return False


# --------------------------------------------------------------------------- processes


class Server:
    """A subprocess in its own session, stopped (SIGTERM, then SIGKILL) on exit."""

    def __init__(
        self,
        name: str,
        cmd: Sequence[str],
        env: dict[str, str],
        port: int | None = None,
        log_dir: Path | None = None,
    ) -> None:
        self.name = name
        self.port = port
        log_dir = log_dir or RESULTS / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            list(cmd),
            env=env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_http(self, path: str = "/", timeout: float = 60.0) -> None:
        """Until the port answers HTTP (any status), or raise with the server's log."""
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.port}{path}"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2):
                    return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer on {url} in {timeout}s:\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        self._log.flush()
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._log.close()


def run(cmd: Sequence[str], env: dict[str, str] | None = None, timeout: float = 300) -> str:
    """Run a command to completion (bounded); return stdout; raise with stderr on failure."""
    done = subprocess.run(
        list(cmd), env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


# --------------------------------------------------------------------------- databases


def sa_url(dsn: str) -> str:
    return dsn.replace("postgresql://", "postgresql+asyncpg://", 1)


def _admin_base() -> str:
    return PG_ADMIN_DSN.rsplit("/", 1)[0]


async def _admin_exec(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_database(stack: contextlib.ExitStack, prefix: str) -> str:
    """A fresh, empty PostgreSQL database dropped when `stack` closes; returns its DSN."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    asyncio.run(_admin_exec(f'CREATE DATABASE "{name}"'))
    stack.callback(
        lambda: asyncio.run(_admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    )
    return f"{_admin_base()}/{name}"


def analyze(dsn: str) -> None:
    """ANALYZE a database, as autovacuum does shortly after the first writes to a table."""
    import asyncpg

    async def go() -> None:
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            await conn.execute("ANALYZE")
        finally:
            await conn.close()

    asyncio.run(go())


def pg_version() -> str:
    import asyncpg

    async def go() -> str:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    try:
        return asyncio.run(go())
    except Exception as exc:  # reported, not fatal here
        return f"unavailable ({type(exc).__name__})"


def relance_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELANCE_")}
    env.update(
        RELANCE_DATABASE_URL=database_url,
        RELANCE_SCHEDULER="off",
        RELANCE_LOG_LEVEL="WARNING",
        RELANCE_SECRET_KEY=SECRET_KEY,
    )
    env.update(extra)
    return env


def migrate(env: dict[str, str]) -> None:
    run([RELANCE, "migrate"], env=env, timeout=300)


def create_shop(env: dict[str, str], name: str = "Bench") -> dict[str, Any]:
    out = run([RELANCE, "shop", "create", "--name", name, "--json"], env=env, timeout=120)
    created: dict[str, Any] = json.loads(out)
    return created


# --------------------------------------------------------------------------- results


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError):
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split(":", 1)[1].strip()
    return {
        "cpus": NCPU,
        "cpu_model": model,
        "memory": mem,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "postgresql": pg_version(),
        "taskset": bool(TASKSET),
        "app_code": app_code(),
    }


def app_code() -> dict[str, str]:
    """Which version of app/ was measured: a hash of its sources and their newest mtime.

    Others edit app/ while benchmarks run; this ties every figure to the code it measured.
    """
    import hashlib

    digest = hashlib.sha256()
    newest = 0.0
    for path in sorted((ROOT / "app").rglob("*.py")):
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
        newest = max(newest, path.stat().st_mtime)
    return {
        "sha256_of_app_sources": digest.hexdigest()[:16],
        "newest_app_file_mtime": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(newest)),
    }


def write_result(name: str, data: dict[str, Any], path: str | None = None) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = Path(path) if path else RESULTS / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(data, indent=2, default=str))
    latest = RESULTS / f"{name}-latest.json"
    if out != latest:
        latest.write_text(out.read_text())
    return out


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "median_ms": round(statistics.median(ms), 3),
        "p95_ms": round(percentile(ms, 95), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "min_ms": round(min(ms), 3),
        "max_ms": round(max(ms), 3),
    }


def verdict(value: float, target: float, higher_is_better: bool = True) -> str:
    ok = value >= target if higher_is_better else value <= target
    return "PASS" if ok else "MISS"


def temp_dir(stack: contextlib.ExitStack, prefix: str) -> Path:
    """A temporary directory removed when `stack` closes."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix=prefix))
    stack.callback(shutil.rmtree, path, True)
    return path


# Products of the generated orders (shaped like tests/factories.py).
PRODUCTS = [
    {
        "id": 12,
        "id_product_attribute": 0,
        "name": "Mug en grès",
        "reference": "MUG-01",
        "quantity": 1,
        "url": "https://shop.example/12-mug.html",
        "image_url": "https://shop.example/img/12.jpg",
    },
    {
        "id": 31,
        "id_product_attribute": 4,
        "name": "Théière fonte 1 L",
        "reference": "TEA-31",
        "quantity": 2,
        "url": "https://shop.example/31-theiere.html",
        "image_url": "https://shop.example/img/31.jpg",
    },
]
