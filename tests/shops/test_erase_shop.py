"""A merchant who leaves: `DELETE /api/v1/shops/{id}` (admin) erases the shop and all its data."""

import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.models import metadata
from tests.factories import ADMIN, create_shop, order_event, post_event
from tests.problems import assert_problem, assert_validation_problem
from tests.test_end_to_end import RELANCE


async def rows_of(engine: AsyncEngine, shop_id: str) -> dict[str, int]:
    """Rows that belong to the shop, per table that has a shop_id (and `shops` itself)."""
    counts = {}
    async with engine.connect() as conn:
        for table in metadata.sorted_tables:
            column = table.c.get("shop_id") if table.name != "shops" else table.c.id
            if column is not None:
                query = select(func.count()).select_from(table).where(column == shop_id)
                counts[table.name] = await conn.scalar(query) or 0
    return counts


async def test_erasing_a_shop_removes_all_of_its_rows_and_nothing_else(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    leaving = await create_shop(client, name="Leaving")
    staying = await create_shop(client, name="Staying")
    for shop in (leaving, staying):
        assert (await post_event(client, shop, order_event(1, 1, 5))).status_code == 202
    before = await rows_of(engine, staying.id)
    assert (await rows_of(engine, leaving.id))["webhook_events"] == 1

    url = f"/api/v1/shops/{leaving.id}"
    assert_problem(await client.delete(url, params={"confirm": leaving.id}), 401)
    assert_problem(
        await client.delete(url, params={"confirm": leaving.id}, headers=leaving.auth), 401
    )
    assert_validation_problem(
        await client.delete(url, headers=ADMIN), ["query", "confirm"], source="query"
    )
    assert_validation_problem(
        await client.delete(url, params={"confirm": staying.id}, headers=ADMIN),
        ["query", "confirm"],
        source="query",
    )
    assert sum((await rows_of(engine, leaving.id)).values()) > 0

    done = await client.delete(url, params={"confirm": leaving.id}, headers=ADMIN)
    assert done.status_code == 204, done.text
    assert set((await rows_of(engine, leaving.id)).values()) == {0}
    assert await rows_of(engine, staying.id) == before
    assert_problem(await client.delete(url, params={"confirm": leaving.id}, headers=ADMIN), 404)
    assert_problem(await client.get(f"{url}/settings", headers=leaving.auth), 401)


@pytest.mark.slow
def test_relance_shop_delete_on_the_command_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELANCE_")}
    env["RELANCE_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"

    def relance(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*RELANCE, *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
        )

    assert relance("migrate").returncode == 0
    created = relance("shop", "create", "--name", "Partante", "--json")
    shop_id = json.loads(created.stdout)["id"]
    refused = relance("shop", "delete", "--id", shop_id, "--confirm", "shp_other")
    assert refused.returncode == 2 and "--confirm" in refused.stderr
    done = relance("shop", "delete", "--id", shop_id, "--confirm", shop_id)
    assert done.returncode == 0, done.stderr
    again = relance("shop", "delete", "--id", shop_id, "--confirm", shop_id)
    assert again.returncode == 1 and shop_id in again.stderr
