"""Backend-specific statements (INSERT … ON CONFLICT), built once and reused.

Hot-path statements are built once per backend and executed with plain parameter dicts:
SQLAlchemy then reuses the memoised cache key and compiled SQL instead of rebuilding the
expression on every request (which cost more than the database round trips).
"""

from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

T = TypeVar("T")


def insert_for(dialect: str, table: Any) -> Any:
    """`insert(table)` with `.on_conflict_do_nothing/do_update` for a backend."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def upsert(conn: AsyncConnection, table: Any) -> Any:
    return insert_for(conn.dialect.name, table)


def prepared(conn: AsyncConnection, build: Callable[[str], T]) -> T:
    """The statement `build(dialect)` returns, built once per backend."""
    built: T = _built(build, conn.dialect.name)
    return built


@cache
def _built(build: Callable[[str], Any], dialect: str) -> Any:
    return build(dialect)
