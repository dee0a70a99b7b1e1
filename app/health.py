"""`/healthz` (alive) and `/readyz` (database, migrations, scheduler, paused shops)."""

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import transaction
from app.errors import PROBLEM_JSON, is_database_unavailable
from app.migrations import head_revision
from app.shops import service as shops

router = APIRouter(tags=["operations"])

READY_TIMEOUT = 2.0  # seconds


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Ready to serve: database, migrations, scheduler, paused shops")
async def readyz(request: Request) -> JSONResponse:
    state = request.app.state
    body: dict[str, Any] = {"scheduler": state.scheduler_state()}
    # Its own short deadline: a load balancer must hear "not ready" while the database is
    # stalled, not wait for the statement timeout. The check runs in a task of its own so
    # that the answer does not wait for its clean-up either (a rollback on a stalled
    # connection waits out the command timeout): the task finishes in the background.
    check = asyncio.create_task(_read_state(state.engine))
    _checks.add(check)
    check.add_done_callback(_checks.discard)
    done, _ = await asyncio.wait({check}, timeout=READY_TIMEOUT)
    try:
        if not done:
            check.cancel()
            raise TimeoutError("the readiness check timed out")
        current, paused = check.result()
    except Exception as exc:
        if not is_database_unavailable(exc) and "alembic_version" not in str(exc):
            raise
        body["database"] = "unreachable or not migrated"
        return _not_ready("The database is unreachable, stalled or not migrated.", body)
    head = head_revision()
    body.update(
        database="ok",
        migration={"current": current, "head": head},
        paused_shops=[
            {
                "shop_id": p["id"],
                "since": p["sending_paused_at"].isoformat(),
                "reason": p["sending_paused_reason"],
            }
            for p in paused
        ],
    )
    if current != head:
        return _not_ready("Migrations are pending: run `relance migrate`.", body)
    return JSONResponse({"status": "ok", **body})


# Checks cancelled at their deadline, kept referenced until their clean-up is over.
_checks: set[asyncio.Task[Any]] = set()


async def _read_state(engine: AsyncEngine) -> tuple[str | None, list[dict[str, Any]]]:
    async with transaction(engine, read_only=True) as conn:
        current = await conn.scalar(text("SELECT version_num FROM alembic_version"))
        return current, await shops.paused_shops(conn)


def _not_ready(detail: str, body: dict[str, Any]) -> JSONResponse:
    """A 503 in the problem+json shape, with what was learnt as extension members."""
    problem = {
        "type": "https://relance.dev/problems/not-ready",
        "title": "Not ready",
        "status": 503,
        "detail": detail,
        **body,
    }
    return JSONResponse(
        problem, status_code=503, media_type=PROBLEM_JSON, headers={"Retry-After": "5"}
    )
