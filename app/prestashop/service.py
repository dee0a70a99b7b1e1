"""A shop's Webservice settings: URL, encrypted key, the thin-event switch and its token.

Every function runs in the caller's transaction.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.errors import InvalidInput, NotFound
from app.hooks import service as hooks
from app.hooks.addresses import url_problem
from app.prestashop.models import PrestashopWebservice
from app.security import decrypt, encrypt

THIN_TOKEN_PREFIX = "pst_"  # noqa: S105 (a prefix, not a secret)


@dataclass(frozen=True)
class Credentials:
    """What a run needs to call the shop's Webservice (the key decrypted, for this run only)."""

    shop_id: str
    url: str
    key: str


def hash_token(token: str) -> str:
    # The token is 256 random bits: a fast hash suffices, and a leaked table opens nothing.
    return hashlib.sha256(token.encode()).hexdigest()


def _field_error(field: str, message: str) -> InvalidInput:
    return InvalidInput(
        f"The {field} is refused: {message}.", [{"loc": ["body", field], "msg": message}]
    )


async def check_url(url: str, allow_private: bool) -> None:
    """The outgoing webhooks' rule (malformed, or resolving to a private address unless
    `RELANCE_WEBHOOK_ALLOW_PRIVATE`), and no ?query: 422 naming `url`."""
    if url_problem(url) is None and "?" in url:
        raise _field_error("url", "must not have a ?query (Relance adds its own)")
    await hooks.check_url(url, allow_private)


def _read(row: Any) -> dict[str, Any]:
    return {
        "url": row.url,
        "thin_events": row.thin_events,
        "reconciled_until": row.reconciled_until,
        "last_run_at": row.last_run_at,
        "last_status": row.last_status,
        "last_error": row.last_error,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


async def _row(conn: AsyncConnection, shop_id: str) -> Any:
    return (
        await conn.execute(
            select(PrestashopWebservice).where(PrestashopWebservice.shop_id == shop_id)
        )
    ).first()


async def get(conn: AsyncConnection, shop_id: str) -> dict[str, Any]:
    """The shop's Webservice settings and last run (never the key): 404 when none."""
    row = await _row(conn, shop_id)
    if row is None:
        raise NotFound("This shop has no PrestaShop Webservice configured.")
    return _read(row)


async def put(
    conn: AsyncConnection,
    shop_id: str,
    url: str,
    key: str,
    thin_events: bool,
    *,
    secret_key: str,
    now: datetime,
) -> tuple[dict[str, Any], str | None]:
    """Set the URL and key (and the thin-event switch). Returns the settings and, when thin
    events were just enabled, their token: shown that once."""
    row = await _row(conn, shop_id)
    token = None
    token_hash = None if row is None else row.thin_token_hash
    if thin_events and (row is None or not row.thin_events or token_hash is None):
        token = THIN_TOKEN_PREFIX + secrets.token_urlsafe(32)
        token_hash = hash_token(token)
    if not thin_events:
        token_hash = None
    values = {
        "url": url,
        "key_encrypted": encrypt(secret_key, key),
        "thin_events": thin_events,
        "thin_token_hash": token_hash,
        "next_run_at": now,  # reconcile soon with the new settings
        "last_status": None,
        "last_error": None,
        "updated_at": now,
    }
    if row is None:
        await conn.execute(
            insert(PrestashopWebservice).values(shop_id=shop_id, created_at=now, **values)
        )
    else:
        await conn.execute(
            update(PrestashopWebservice)
            .where(PrestashopWebservice.shop_id == shop_id)
            .values(values)
        )
    return _read(await _row(conn, shop_id)), token


async def delete_settings(conn: AsyncConnection, shop_id: str) -> None:
    done = await conn.execute(
        delete(PrestashopWebservice).where(PrestashopWebservice.shop_id == shop_id)
    )
    if not done.rowcount:
        raise NotFound("This shop has no PrestaShop Webservice configured.")


async def credentials(conn: AsyncConnection, shop_id: str, secret_key: str) -> Credentials:
    """The URL and decrypted key: 404 when none is configured; ValueError when the key no
    longer decrypts (RELANCE_SECRET_KEY changed without `relance rekey`)."""
    row = await _row(conn, shop_id)
    if row is None:
        raise NotFound("This shop has no PrestaShop Webservice configured.")
    return Credentials(shop_id, row.url, decrypt(secret_key, row.key_encrypted))


async def shop_of_token(conn: AsyncConnection, token: str) -> str | None:
    """The shop whose enabled thin-event token this is, or None."""
    if not token.startswith(THIN_TOKEN_PREFIX) or len(token) > 100:
        return None
    found: str | None = await conn.scalar(
        select(PrestashopWebservice.shop_id).where(
            PrestashopWebservice.thin_token_hash == hash_token(token),
            PrestashopWebservice.thin_events.is_(True),
        )
    )
    return found
