"""Optional sampling profiles with py-spy (pip-installed into the venv for profiling only).

`record()` samples a running process for a few seconds into py-spy's "raw" (collapsed stacks)
format; `summarize()` turns that into: where the CPU goes by package (self time of the leaf
frame), the heaviest functions (self and inclusive), and the share of samples under chosen frames.
SQLAlchemy's asyncio layer runs each statement in a greenlet, whose samples py-spy shows as
separate stacks: "inclusive" figures of app functions therefore miss the time spent inside
SQLAlchemy's execute; the per-package self time is exact.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import BIN

# Frames from py-spy read "function (package/module.py:line)": the package is the first part.
THIRD_PARTY = {
    "sqlalchemy": "sqlalchemy",
    "asyncpg": "asyncpg",
    "aiosqlite": "aiosqlite",
    "pydantic": "pydantic",
    "pydantic_core": "pydantic",
    "fastapi": "fastapi",
    "starlette": "starlette",
    "uvicorn": "uvicorn",
    "cryptography": "cryptography",
    "jinja2": "jinja2",
    "babel": "babel",
    "aiosmtplib": "aiosmtplib",
    "greenlet": "greenlet",
    "app": "app (Relance)",
    "bench": "bench",
}
STDLIB_GROUPS = {"email": "email (stdlib)", "json": "json (stdlib)", "asyncio": "asyncio (stdlib)"}

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]*)(?::\d+)?\)$")


def py_spy() -> str | None:
    candidate = BIN / "py-spy"
    return str(candidate) if candidate.exists() else shutil.which("py-spy")


def record(pid: int, seconds: float, out: Path, rate: int = 250) -> subprocess.Popen[bytes] | None:
    """Start sampling `pid` in the background; returns the py-spy process (None if absent)."""
    exe = py_spy()
    if exe is None:
        return None
    return subprocess.Popen(
        [
            exe,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(seconds)),
            "--rate",
            str(rate),
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _package(file: str) -> str:
    head = file.split("/", 1)[0]
    if head in THIRD_PARTY:
        return THIRD_PARTY[head]
    if head in STDLIB_GROUPS:
        return STDLIB_GROUPS[head]
    if "site-packages/" in file:
        return _package(file.split("site-packages/", 1)[1])
    return "other (stdlib, C code attributed to its caller)"


def summarize(path: Path, markers: dict[str, str], top: int = 25) -> dict[str, Any]:
    """Self time by package, top inclusive functions, and the share of samples under markers.

    `markers` maps a label to a substring of a frame ("func (file…)"); a sample counts for the
    label when any of its frames contains the substring.
    """
    self_pkg: Counter[str] = Counter()
    self_fn: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    marked: Counter[str] = Counter()
    total = 0
    if not path.exists():
        return {"samples": 0}
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        leaf = _FRAME.match(frames[-1])
        self_pkg[_package(leaf.group("file") if leaf else frames[-1])] += count
        self_fn[f"{leaf.group('func')} ({leaf.group('file')})" if leaf else frames[-1]] += count
        seen: set[str] = set()
        for frame in frames:
            m = _FRAME.match(frame)
            key = f"{m.group('func')} ({m.group('file')})" if m else frame
            if key not in seen:
                seen.add(key)
                inclusive[key] += count
        for label, needle in markers.items():
            if any(needle in f for f in frames):
                marked[label] += count
    if not total:
        return {"samples": 0}

    def pct(n: int) -> float:
        return round(100 * n / total, 1)

    return {
        "samples": total,
        "self_by_package_pct": {k: pct(v) for k, v in self_pkg.most_common()},
        "self_top_pct": {k: pct(v) for k, v in self_fn.most_common(top)},
        "inclusive_top_pct": {k: pct(v) for k, v in inclusive.most_common(top)},
        "markers_inclusive_pct": {k: pct(marked[k]) for k in markers},
    }
