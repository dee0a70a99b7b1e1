"""The suppression list: add, look up, remove and list addresses; who an unsubscribe link names.

Rows are keyed by a keyed hash of the normalised address (`hash_email`), so an address whose
personal data was erased stays recognised. Every function runs in the caller's transaction.
"""

import base64
import binascii
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, delete, exists, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from app.dialect import PerDialect
from app.errors import InvalidInput
from app.orders.service import normalize_email
from app.requests.models import ReviewRequest
from app.security import address_hash
from app.shops.models import Shop
from app.suppressions.models import Suppression
from app.suppressions.vocabulary import SuppressionReason


def hash_email(key: bytes, email: str) -> str:
    """The list's key for an address: `security.address_hash` of its normalised form."""
    return address_hash(key, normalize_email(email))


_IS_SUPPRESSED = select(
    exists().where(
        Suppression.shop_id == bindparam("b_shop"),
        Suppression.email_hash == bindparam("b_hash"),
    )
)


async def is_suppressed(conn: AsyncConnection, shop_id: str, email_hash: str) -> bool:
    """Whether the shop must never write to this address."""
    found = await conn.scalar(_IS_SUPPRESSED, {"b_shop": shop_id, "b_hash": email_hash})
    return bool(found)


async def suppressed_among(
    conn: AsyncConnection, keys: Iterable[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Which of these (shop id, address hash) pairs are suppressed, in one query."""
    wanted = sorted(set(keys))
    if not wanted:
        return set()
    if conn.dialect.name == "postgresql":
        columns = ([shop_id for shop_id, _ in wanted], [h for _, h in wanted])
        found = await conn.exec_driver_sql(_PG_SUPPRESSED, columns)
        return {(r.shop_id, r.email_hash) for r in found}
    rows = await conn.execute(
        select(Suppression.shop_id, Suppression.email_hash).where(
            tuple_(Suppression.shop_id, Suppression.email_hash).in_(wanted)
        )
    )
    return {(r.shop_id, r.email_hash) for r in rows}


# On PostgreSQL one fixed text for any number of addresses: prepared once per connection,
# where the general form builds a new IN list, so a new statement, for each batch size.
_PG_SUPPRESSED = """
SELECT shop_id, email_hash FROM suppressions
WHERE (shop_id, email_hash) IN (SELECT * FROM unnest($1::text[], $2::text[]))
"""

_INSERT = PerDialect(
    lambda insert_: (
        insert_(Suppression)
        .values(
            shop_id=bindparam("b_shop"),
            email_hash=bindparam("b_hash"),
            email=bindparam("b_email"),
            reason=bindparam("b_reason"),
            created_at=bindparam("b_now"),
        )
        .on_conflict_do_nothing()
        .returning(Suppression.email_hash)
    )
)


async def add(
    conn: AsyncConnection,
    shop_id: str,
    key: bytes,
    email: str,
    reason: SuppressionReason,
    now: datetime,
) -> bool:
    """Put an address on the shop's list; False when it was there already (left as it was)."""
    added = await conn.scalar(
        _INSERT.on(conn),
        {
            "b_shop": shop_id,
            "b_hash": hash_email(key, email),
            "b_email": normalize_email(email),
            "b_reason": reason,
            "b_now": now,
        },
    )
    return added is not None


_COLUMNS = (Suppression.email, Suppression.reason, Suppression.created_at, Suppression.email_hash)


async def get(conn: AsyncConnection, shop_id: str, key: bytes, email: str) -> dict[str, Any] | None:
    """The shop's entry for an address, or None."""
    row = (
        (
            await conn.execute(
                select(*_COLUMNS).where(
                    Suppression.shop_id == shop_id,
                    Suppression.email_hash == hash_email(key, email),
                )
            )
        )
        .mappings()
        .first()
    )
    return None if row is None else dict(row)


async def remove(conn: AsyncConnection, shop_id: str, key: bytes, email: str) -> bool:
    """Take an address off the shop's list; False when it was not on it."""
    done = await conn.execute(
        delete(Suppression).where(
            Suppression.shop_id == shop_id, Suppression.email_hash == hash_email(key, email)
        )
    )
    return bool(done.rowcount)


# A cursor is the last entry's (created_at, hash), packed: 8 bytes of microseconds since the
# epoch and the 32 bytes of the hash, 54 characters once encoded.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _encode_cursor(created_at: datetime, email_hash: str) -> str:
    micros = (created_at - _EPOCH) // timedelta(microseconds=1)
    raw = struct.pack(">q", micros) + bytes.fromhex(email_hash)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        if len(raw) != 40:
            raise ValueError(len(raw))
        (micros,) = struct.unpack(">q", raw[:8])
        return _EPOCH + timedelta(microseconds=micros), raw[8:].hex()
    except (ValueError, binascii.Error, OverflowError):
        raise InvalidInput(
            "Invalid cursor.", [{"loc": ["query", "cursor"], "msg": "not a cursor from this API"}]
        ) from None


async def list_page(
    conn: AsyncConnection, shop_id: str, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the shop's list, newest first, and the cursor of the next page."""
    stmt = select(*_COLUMNS).where(Suppression.shop_id == shop_id)
    if cursor is not None:
        created_at, email_hash = _decode_cursor(cursor)
        stmt = stmt.where(
            or_(
                Suppression.created_at < created_at,
                and_(Suppression.created_at == created_at, Suppression.email_hash < email_hash),
            )
        )
    result = await conn.execute(
        stmt.order_by(Suppression.created_at.desc(), Suppression.email_hash.desc()).limit(limit + 1)
    )
    rows = [dict(r) for r in result.mappings()]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = _encode_cursor(last["created_at"], last["email_hash"])
    return rows[:limit], next_cursor


@dataclass(frozen=True)
class Recipient:
    """Whom an unsubscribe link names: the address a request was for, and its shop."""

    shop_id: str
    shop_name: str
    email: str
    language: str


_RECIPIENT = (
    select(
        ReviewRequest.shop_id,
        ReviewRequest.email,
        ReviewRequest.language,
        Shop.name.label("shop_name"),
    )
    .join(Shop, Shop.id == ReviewRequest.shop_id)
    .where(ReviewRequest.public_id == bindparam("b_public_id"))
)


async def recipient(conn: AsyncConnection, public_id: str) -> Recipient | None:
    """The recipient of the request a link names, or None when there is no such request."""
    row = (await conn.execute(_RECIPIENT, {"b_public_id": public_id})).first()
    if row is None:
        return None
    return Recipient(row.shop_id, row.shop_name, row.email, row.language)
