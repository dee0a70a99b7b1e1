"""`/healthz` (alive) and `/readyz` (database, migrations, scheduler, paused shops)."""

from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.script import ScriptDirectory
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.db import transaction
from app.errors import is_database_unavailable
from app.shops import service as shops

router = APIRouter(tags=["operations"])

ROOT = Path(__file__).resolve().parents[1]


def alembic_config(database_url: str | None = None) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    if database_url:
        config.attributes["database_url"] = database_url
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Ready to serve: database, migrations, scheduler, paused shops")
async def readyz(request: Request) -> JSONResponse:
    state = request.app.state
    body: dict[str, Any] = {"scheduler": state.scheduler_state()}
    try:
        async with transaction(state.engine, read_only=True) as conn:
            current = await conn.scalar(text("SELECT version_num FROM alembic_version"))
            paused = await shops.paused_shops(conn)
    except Exception as exc:
        if not is_database_unavailable(exc) and "alembic_version" not in str(exc):
            raise
        body.update(status="unavailable", database="unreachable or not migrated")
        return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})
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
    ready = current == head
    body["status"] = "ok" if ready else "migrations pending: run `relance migrate`"
    return JSONResponse(body, status_code=200 if ready else 503)
