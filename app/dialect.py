"""The INSERT … ON CONFLICT construct of the connection's backend (PostgreSQL or SQLite)."""

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


def upsert(conn: AsyncConnection, table: Any) -> Any:
    """`insert(table)` with `.on_conflict_do_nothing/do_update` for this connection's backend."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
