"""Health, readiness, OpenAPI, migrations that match the models, and the UTC type."""

from datetime import UTC, datetime
from typing import Any

import httpx
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.logs import mask_emails
from app.models import metadata
from app.shops.models import Shop
from tests.factories import ClientFor
from tests.problems import assert_problem


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_readyz_reports_database_migrations_and_scheduler(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    async with engine.connect() as conn:
        migrated = await conn.scalar(text("SELECT version_num FROM alembic_version"))
    assert migrated is not None
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ok",
        "database": "ok",
        "migration": {"current": migrated, "head": migrated},
        "scheduler": "off",
        "paused_shops": [],
    }


async def test_openapi_documents_the_webhook_with_an_example(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    operation = spec["paths"]["/webhooks/prestashop/{shop_id}"]["post"]
    example = operation["requestBody"]["content"]["application/json"]["example"]
    assert example["type"] == "order.status_changed"
    assert {"401", "404", "413", "422", "503"} <= set(operation["responses"])
    assert "/api/v1/shops/{shop_id}/settings" in spec["paths"]
    assert (await client.get("/docs")).status_code == 200


async def test_migrations_match_the_models(engine: AsyncEngine) -> None:
    def diff(sync_conn: Any) -> list[Any]:
        context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    async with engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_timestamps_round_trip_as_aware_utc(engine: AsyncEngine) -> None:
    moment = datetime(2026, 11, 20, 10, 15, 0, 123456, tzinfo=UTC)
    async with engine.begin() as conn:
        await conn.execute(
            Shop.__table__.insert().values(
                id="shp_t",
                name="T",
                timezone="UTC",
                language="en",
                settings={},
                created_at=moment,
                updated_at=moment,
            )
        )
        value = await conn.scalar(select(Shop.created_at).where(Shop.id == "shp_t"))
        # Comparison in SQL is chronological on both backends.
        later = await conn.scalar(
            select(Shop.id).where(Shop.created_at > datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
        )
        await conn.execute(text("DELETE FROM shops WHERE id = 'shp_t'"))
    assert value == moment and value.tzinfo is not None
    assert later == "shp_t"


def test_logs_mask_email_addresses() -> None:
    assert mask_emails("sent to marie.dupont@example.fr") == "sent to m***@example.fr"


async def test_unreachable_database_answers_503_with_retry_after(
    settings: Settings, client_for: ClientFor
) -> None:
    broken = settings.model_copy(
        update={"database_url": "postgresql+asyncpg://postgres@127.0.0.1:1/none"}
    )
    client = await client_for(broken)
    response = await client.post(
        "/webhooks/prestashop/shp_x", content=b"{}", headers={"webhook-id": "m"}
    )
    ready = await client.get("/readyz")
    assert_problem(response, 503)
    assert assert_problem(ready, 503)["database"] == "unreachable or not migrated"
