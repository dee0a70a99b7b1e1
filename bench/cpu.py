"""CPU accounting from /proc: how busy the server, PostgreSQL and the machine were during a run.

The machine may be shared (other test suites, other databases on the same PostgreSQL), so
PostgreSQL is measured twice: the backends serving *our* database (found by the database name
in their process title) and every postgres process. `machine_busy_pct` shows how much of the
whole machine was busy, ours or not.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_seconds(pid: int | str) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    # utime and stime: fields 14 and 15 of stat, i.e. 11 and 12 after "(comm)"
    return (int(fields[11]) + int(fields[12])) / TICKS


def _postgres() -> dict[str, tuple[str, float]]:
    """pid -> (process title, cpu seconds) of every postgres process."""
    out: dict[str, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            out[entry.name] = (title, _proc_seconds(entry.name))
    return out


def machine_jiffies() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs since boot."""
    try:
        parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0, 0.0
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    total = sum(parts[:8])
    return float(total - idle), float(total)


def background_busy(seconds: float = 2.0) -> float:
    """Percent of the machine busy over `seconds` while we do nothing: other tenants' load."""
    busy0, total0 = machine_jiffies()
    time.sleep(seconds)
    busy1, total1 = machine_jiffies()
    return round(100 * (busy1 - busy0) / (total1 - total0), 1) if total1 > total0 else 0.0


class CpuMeter:
    """`start()` then `stop()`: CPU of one process, of our PostgreSQL backends, of the box."""

    def __init__(self, pid: int | None, database: str | None = None) -> None:
        self.pid = pid
        self.database = database

    def start(self) -> None:
        self._wall = time.monotonic()
        self._server = _proc_seconds(self.pid) if self.pid else 0.0
        self._pg = _postgres()
        self._machine = machine_jiffies()

    def stop(self) -> dict[str, float]:
        wall = time.monotonic() - self._wall
        server = (_proc_seconds(self.pid) - self._server) if self.pid else 0.0
        pg_all = pg_ours = 0.0
        for pid, (title, seconds) in _postgres().items():
            # Processes that exited during the run are lost; new ones count from zero.
            delta = seconds - self._pg.get(pid, ("", 0.0))[1]
            pg_all += delta
            if self.database and f" {self.database} " in title:
                pg_ours += delta
        busy, total = machine_jiffies()
        d_total = total - self._machine[1]
        result = {
            "server_cpu_pct_of_one_core": round(100 * server / wall, 1),
            "postgres_all_cpu_pct_of_one_core": round(100 * pg_all / wall, 1),
            "machine_busy_pct": round(100 * (busy - self._machine[0]) / d_total, 1)
            if d_total
            else 0.0,
        }
        if self.database:
            result["postgres_ours_cpu_pct_of_one_core"] = round(100 * pg_ours / wall, 1)
        return result
