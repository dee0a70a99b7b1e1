"""A shop's own SMTP server: its URL stored encrypted, never shown back with its password."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.dialect import PerDialect
from app.errors import InvalidInput, NotFound
from app.security import decrypt, encrypt
from app.shops.models import ShopMailServer

SCHEMES = ("smtp", "smtp+starttls", "smtps")


@dataclass(frozen=True)
class MailServer:
    """What the API shows of a shop's server: everything but the password."""

    scheme: str
    host: str
    port: int
    username: str | None
    max_connections: int | None = None


def describe(url: str, max_connections: int | None = None) -> MailServer:
    """Parse and check an SMTP URL; InvalidInput naming `url` when it is not one."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if parts is None or parts.scheme not in SCHEMES or not parts.hostname:
        raise InvalidInput(
            "Not an SMTP URL.",
            [{"loc": ["body", "url"], "msg": "expected smtp://, smtp+starttls:// or smtps://"}],
        )
    default = 465 if parts.scheme == "smtps" else 587 if parts.scheme == "smtp+starttls" else 25
    return MailServer(
        parts.scheme,
        parts.hostname,
        port or default,
        unquote(parts.username) if parts.username else None,
        max_connections,
    )


def _upsert(insert_: Any) -> Any:
    stmt = insert_(ShopMailServer)
    return stmt.on_conflict_do_update(
        index_elements=[ShopMailServer.shop_id],
        set_={
            "url_encrypted": stmt.excluded.url_encrypted,
            "max_connections": stmt.excluded.max_connections,
            "updated_at": stmt.excluded.updated_at,
        },
    )


_UPSERT = PerDialect(_upsert)


async def put(
    conn: AsyncConnection,
    shop_id: str,
    url: str,
    secret_key: str,
    now: datetime,
    max_connections: int | None = None,
) -> MailServer:
    server = describe(url, max_connections)
    await conn.execute(
        _UPSERT.on(conn),
        {
            "shop_id": shop_id,
            "url_encrypted": encrypt(secret_key, url),
            "max_connections": max_connections,
            "updated_at": now,
        },
    )
    return server


async def get(conn: AsyncConnection, shop_id: str, secret_key: str) -> MailServer:
    row = (
        await conn.execute(
            select(ShopMailServer.url_encrypted, ShopMailServer.max_connections).where(
                ShopMailServer.shop_id == shop_id
            )
        )
    ).first()
    if row is None:
        raise NotFound("No mail server of the shop's own: e-mails go through RELANCE_MAIL_URL.")
    return describe(decrypt(secret_key, row.url_encrypted), row.max_connections)


async def remove(conn: AsyncConnection, shop_id: str) -> None:
    done = await conn.execute(delete(ShopMailServer).where(ShopMailServer.shop_id == shop_id))
    if not done.rowcount:
        raise NotFound("No mail server of the shop's own.")
