"""Real databases for every test: a migrated SQLite file and a migrated PostgreSQL database.

One app per backend serves the whole session: its lifespan (engine, dispatcher) runs once, so
tests reuse warm connections and compiled statements. Each database test starts on empty
tables (`_clean`). A test that needs other settings (no admin token, a metrics token, a dead
database) starts its own app with `client_for`.

PostgreSQL: the suite creates and drops its own database through the server named by
RELANCE_TEST_POSTGRES_URL (default: postgresql://postgres@127.0.0.1:5432/postgres). When no
server answers, PostgreSQL tests are skipped with one line saying so — unless
RELANCE_TEST_REQUIRE_POSTGRES=1 (as in CI), which turns that skip into a failure.
"""

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from functools import partial
from pathlib import Path

import asyncpg
import httpx
import pytest
from alembic import command
from fastapi import FastAPI
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.db import create_engine
from app.main import create_app
from app.migrations import alembic_config
from app.models import metadata
from tests.factories import ClientFor

PG_ADMIN_URL = os.environ.get(
    "RELANCE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_PG = os.environ.get("RELANCE_TEST_REQUIRE_POSTGRES") == "1"
BACKENDS = ["sqlite", "postgresql"]
BASE_URL = "http://relance.test"

Emptier = Callable[[], Awaitable[None]]


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


# --- Isolation: every table emptied before each database test ---------------------------------


async def _empty_sqlite(engine: AsyncEngine) -> None:
    """DELETE every table, children first, in one transaction. Ids restart by themselves:
    the tables have no AUTOINCREMENT, so an empty table hands out 1 again."""
    async with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            await conn.execute(delete(table))


async def _postgres_script(connection: asyncpg.Connection) -> str:
    """One script, one round trip: DELETE every table (children first) and restart the id
    sequences, in one transaction. On these small tables it takes about 0.4 ms, where
    `TRUNCATE … RESTART IDENTITY CASCADE` takes about 20 ms (it gives every table new files
    and syncs them at commit)."""
    sequences = await connection.fetch(
        "SELECT c.oid::regclass::text AS name FROM pg_class c "
        "WHERE c.relkind = 'S' AND c.relnamespace = 'public'::regnamespace"
    )
    deletes = "".join(f'DELETE FROM "{t.name}";' for t in reversed(metadata.sorted_tables))
    restarts = "".join(f"SELECT setval('{s['name']}', 1, false);" for s in sequences)
    # A row lock left by a killed process fails the next test after 10 s instead of hanging it.
    return f"BEGIN; SET LOCAL lock_timeout = '10s'; {deletes} {restarts} COMMIT;"


@pytest.fixture(scope="session")
async def _emptier(database_url: str, engine: AsyncEngine) -> AsyncIterator[Emptier]:
    """How to empty this backend's tables; alembic_version is not in the metadata: it stays."""
    if database_url.startswith("sqlite"):
        yield partial(_empty_sqlite, engine)
        return
    connection = await asyncpg.connect(_asyncpg_dsn(database_url), timeout=5)
    try:
        script = await _postgres_script(connection)

        async def empty() -> None:
            await connection.execute(script)

        yield empty
    finally:
        await connection.close()


@pytest.fixture
async def _empty_tables(_emptier: Emptier) -> None:
    await _emptier()


@pytest.fixture(autouse=True)
def _clean(request: pytest.FixtureRequest) -> None:
    """Each database test starts on empty tables (the schema and its migration stay).

    Emptied before the test rather than after, so a test never sees what an interrupted one
    left. Synchronous on purpose: it can then set up the async `_empty_tables` on demand.
    """
    if "engine" in request.fixturenames:
        request.getfixturevalue("_empty_tables")


# --- The app ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The default app's settings for this backend. Shared: derive others with `model_copy`."""
    outbox = tmp_path_factory.mktemp("outbox")
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
def outbox(settings: Settings) -> Path:
    """The file outbox of `settings`, emptied for this test."""
    path = Path(settings.mail_url.removeprefix("file:"))
    shutil.rmtree(path, ignore_errors=True)
    return path


@pytest.fixture(scope="session")
async def app(settings: Settings, engine: AsyncEngine) -> AsyncIterator[FastAPI]:
    """One app per backend for the session, lifespan included (scheduler off)."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as c:
        yield c


@pytest.fixture
async def client_for() -> AsyncIterator[ClientFor]:
    """Starts an app of its own for the given settings (lifespan and all) and returns a
    client of it; every app started is shut down after the test."""
    async with AsyncExitStack() as stack:

        async def start(settings: Settings) -> httpx.AsyncClient:
            application = create_app(settings)
            await stack.enter_async_context(application.router.lifespan_context(application))
            transport = httpx.ASGITransport(app=application)
            return await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url=BASE_URL)
            )

        yield start


@pytest.fixture
def anyio_backend() -> Iterator[str]:
    yield "asyncio"
