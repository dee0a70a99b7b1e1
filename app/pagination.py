"""Opaque keyset cursors: the API never exposes offsets."""

import base64
import binascii
from typing import Any

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.errors import InvalidInput
from app.validation import INT64_MAX


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = text.partition(":")
        if kind != "id" or not value.isdigit() or len(value) > 19:
            raise ValueError(kind)
        last_id = int(value)
        if not 0 < last_id <= INT64_MAX:
            raise ValueError(value)
        return last_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput(
            "Invalid cursor.", [{"loc": ["query", "cursor"], "msg": "not a cursor from this API"}]
        ) from None


async def page(
    conn: AsyncConnection, stmt: Select[Any], id_column: Any, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of `stmt`, newest (highest id) first, and the cursor of the next page."""
    if cursor is not None:
        stmt = stmt.where(id_column < decode_cursor(cursor))
    result = await conn.execute(stmt.order_by(id_column.desc()).limit(limit + 1))
    rows = [dict(r) for r in result.mappings()]
    next_cursor = encode_cursor(rows[limit - 1]["id"]) if len(rows) > limit else None
    return rows[:limit], next_cursor
