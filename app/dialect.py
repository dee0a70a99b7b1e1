"""Statements that differ per backend (INSERT … ON CONFLICT), built once for each.

Hot-path statements are module-level constants executed with parameter dicts: SQLAlchemy then
reuses their memoised cache key and compiled SQL instead of rebuilding the expression on every
request (which cost more than the database round trips). Bind names start with `b_` because
SQLAlchemy reserves a column's own name for the value of that column in INSERT and UPDATE.
"""

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

T = TypeVar("T")


class PerDialect(Generic[T]):
    """One statement per backend; `build` receives that backend's `insert`."""

    def __init__(self, build: Callable[[Any], T]) -> None:
        self._by_dialect = {"postgresql": build(postgresql.insert), "sqlite": build(sqlite.insert)}

    def on(self, conn: AsyncConnection) -> T:
        return self._by_dialect[conn.dialect.name]
