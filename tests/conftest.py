"""Real databases for every test: a migrated SQLite file and a migrated PostgreSQL database.

PostgreSQL: the suite creates and drops its own database through the server named by
RELANCE_TEST_POSTGRES_URL (default: postgresql://postgres@127.0.0.1:5432/postgres). When no
server answers, PostgreSQL tests are skipped with one line saying so — unless
RELANCE_TEST_REQUIRE_POSTGRES=1 (as in CI), which turns that skip into a failure.
"""

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from alembic import command
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.db import create_engine
from app.health import alembic_config
from app.main import create_app
from app.models import metadata

PG_ADMIN_URL = os.environ.get(
    "RELANCE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_PG = os.environ.get("RELANCE_TEST_REQUIRE_POSTGRES") == "1"
BACKENDS = ["sqlite", "postgresql"]


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _pg_admin() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(_asyncpg_dsn(PG_ADMIN_URL), timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        message = (
            f"PostgreSQL not reachable at {PG_ADMIN_URL} ({type(exc).__name__}); "
            "start it or set RELANCE_TEST_POSTGRES_URL to run the PostgreSQL tests"
        )
        if REQUIRE_PG:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


async def _migrate(url: str) -> None:
    # Alembic's env.py runs its own event loop: run it in a thread.
    await asyncio.to_thread(command.upgrade, alembic_config(url), "head")


@pytest.fixture(scope="session")
async def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A migrated database URL for the backend the test is parametrized with."""
    backend = request.param
    if backend == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "relance.db"
        url = f"sqlite+aiosqlite:///{path}"
        await _migrate(url)
        yield url
        return
    admin = await _pg_admin()
    name = f"relance_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    base = _asyncpg_dsn(PG_ADMIN_URL).rsplit("/", 1)[0]
    url = base.replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"
    try:
        await _migrate(url)
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database_url" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("postgres_only")
        params = ["postgresql"] if marker else BACKENDS
        metafunc.parametrize("database_url", params, indirect=True, scope="session")


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture(autouse=True)
async def _clean(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Each test starts on empty tables (the schema stays)."""
    yield
    if "engine" not in request.fixturenames:
        return
    engine: AsyncEngine = request.getfixturevalue("engine")
    async with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            await conn.execute(delete(table))


@pytest.fixture
def outbox(tmp_path: Path) -> Path:
    return tmp_path / "outbox"


@pytest.fixture
def settings(database_url: str, outbox: Path) -> Settings:
    return Settings(
        database_url=database_url,
        mail_url=f"file:{outbox}",
        scheduler="off",
        admin_token="admin-token-for-tests",
        secret_key="test-secret-key",
        public_url="https://reviews.example.test",
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
async def app(settings: Settings, engine: AsyncEngine) -> AsyncIterator[Any]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://relance.test") as c:
        yield c


@pytest.fixture
def anyio_backend() -> Iterator[str]:
    yield "asyncio"
