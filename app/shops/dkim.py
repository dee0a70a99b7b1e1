"""DKIM for a shop's e-mails: a key generated per shop, its DNS record, and signing.

The private key is generated here (RSA 2048, the `cryptography` package) and stored encrypted
with RELANCE_SECRET_KEY; signing uses dkimpy, the maintained DKIM library.
"""

import base64
import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.dialect import PerDialect
from app.errors import NotFound
from app.security import decrypt, encrypt
from app.shops.models import ShopDkimKey

# The headers signed: what a receiver shows and what identifies the message.
SIGNED_HEADERS = [
    b"from", b"to", b"subject", b"date", b"message-id", b"reply-to",
    b"list-unsubscribe", b"list-unsubscribe-post", b"content-type", b"mime-version",
]  # fmt: skip
_BARE_LF = re.compile(rb"(?<!\r)\n")


@dataclass(frozen=True)
class DkimKey:
    domain: str
    selector: str
    public_key: str

    @property
    def record_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    @property
    def record_value(self) -> str:
        return f"v=DKIM1; k=rsa; p={self.public_key}"


def _new_key() -> tuple[bytes, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, base64.b64encode(public).decode()


def _upsert(insert_: Any) -> Any:
    stmt = insert_(ShopDkimKey)
    return stmt.on_conflict_do_update(
        index_elements=[ShopDkimKey.shop_id],
        set_={c: stmt.excluded[c] for c in ("domain", "selector", "private_key_encrypted",
                                            "public_key", "created_at")},
    )  # fmt: skip


_UPSERT = PerDialect(_upsert)


async def create(
    conn: AsyncConnection, shop_id: str, domain: str, selector: str, secret_key: str, now: datetime
) -> DkimKey:
    """A new key for the shop (replacing any previous one): publish its record, then send."""
    private, public = _new_key()
    await conn.execute(
        _UPSERT.on(conn),
        {
            "shop_id": shop_id,
            "domain": domain,
            "selector": selector,
            "private_key_encrypted": encrypt(secret_key, private.decode()),
            "public_key": public,
            "created_at": now,
        },
    )
    return DkimKey(domain, selector, public)


async def get(conn: AsyncConnection, shop_id: str) -> DkimKey:
    row = (
        await conn.execute(
            select(ShopDkimKey.domain, ShopDkimKey.selector, ShopDkimKey.public_key).where(
                ShopDkimKey.shop_id == shop_id
            )
        )
    ).first()
    if row is None:
        raise NotFound("No DKIM key: create one with POST …/dkim.")
    return DkimKey(row.domain, row.selector, row.public_key)


async def remove(conn: AsyncConnection, shop_id: str) -> None:
    done = await conn.execute(delete(ShopDkimKey).where(ShopDkimKey.shop_id == shop_id))
    if not done.rowcount:
        raise NotFound("No DKIM key.")


@lru_cache(maxsize=1024)
def _private_key(secret_key: str, encrypted: str) -> bytes:
    # Decrypting is costly and a stored key never changes: once per process per key.
    return decrypt(secret_key, encrypted).encode()


def sign(data: bytes, *, domain: str, selector: str, encrypted_key: str, secret_key: str) -> bytes:
    """The message with its DKIM-Signature header first (CRLF line endings, as sent)."""
    message = _BARE_LF.sub(b"\r\n", data)
    signature = dkim.sign(
        message,
        selector.encode(),
        domain.encode(),
        _private_key(secret_key, encrypted_key),
        include_headers=SIGNED_HEADERS,
    )
    return bytes(signature) + message
