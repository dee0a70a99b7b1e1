"""Engine, transactions, SQLite pragmas, the UTC datetime type and the declarative Base."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect, Integer, MetaData, event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator

from app.config import Settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

READ_ONLY = "relance_read_only"

# SQLite only auto-increments an INTEGER PRIMARY KEY, PostgreSQL wants BIGINT for big tables.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on every backend.

    SQLite has no timestamp type: values are stored as naive UTC text in one fixed format, so
    that string comparison in SQL is chronological.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use timezone-aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


def create_engine(
    url: str,
    pool_size: int = 10,
    *,
    connect_timeout: float = 5.0,
    command_timeout: float | None = 10.0,
    pool_timeout: float = 5.0,
) -> AsyncEngine:
    """Create the engine, with a timeout on every wait so a stalled database answers 503.

    On SQLite: WAL, `BEGIN IMMEDIATE` for writers, and the command timeout as busy timeout.
    `command_timeout=None` (migrations, which may build large indexes) waits as long as needed.
    SQL parameters are kept out of error messages: they hold names and e-mail addresses,
    and error messages end up in logs.
    """
    if url.startswith("sqlite"):
        busy = command_timeout or 3600.0
        engine = create_async_engine(
            url,
            connect_args={"timeout": busy},
            pool_timeout=pool_timeout,
            hide_parameters=True,
        )
        _configure_sqlite(engine, busy)
        return engine
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=pool_timeout,
        pool_pre_ping=False,
        hide_parameters=True,
        # asyncpg: `timeout` bounds connecting, `command_timeout` every statement (rollback
        # included), so a stalled link fails fast instead of holding the request.
        connect_args={"timeout": connect_timeout, "command_timeout": command_timeout},
    )


def engine_for(settings: Settings) -> AsyncEngine:
    """The engine a process builds from its settings (pool size and timeouts)."""
    return create_engine(
        settings.database_url,
        settings.db_pool_size,
        connect_timeout=settings.db_connect_timeout,
        command_timeout=settings.db_command_timeout,
        pool_timeout=settings.db_pool_timeout,
    )


def _configure_sqlite(engine: AsyncEngine, busy_timeout: float) -> None:
    # SQLAlchemy's documented aiosqlite recipe: take transaction control away from the driver
    # so that we emit BEGIN ourselves. Writers begin IMMEDIATE (take the write lock first), so
    # a read-then-write transaction never fails with SQLITE_BUSY halfway through.
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


@asynccontextmanager
async def transaction(
    engine: AsyncEngine, read_only: bool = False
) -> AsyncIterator[AsyncConnection]:
    """One transaction: commit on success, rollback on error. The caller owns it."""
    bound = engine.execution_options(**{READ_ONLY: True}) if read_only else engine
    async with bound.begin() as conn:
        yield conn
