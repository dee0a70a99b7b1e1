"""`relance rekey`: re-encrypt the stored secrets from a previous secret key to the current one.

Databases created before keys were generated used the public development key; a changed
RELANCE_SECRET_KEY leaves the same problem. Every encrypted column is listed here, so one
command moves them all, in one transaction.
"""

from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db import transaction
from app.hooks.models import HookEndpoint
from app.orders.service import normalize_email
from app.prestashop.models import PrestashopWebservice
from app.security import address_hash, address_key, decrypt, encrypt
from app.shops.models import ShopDkimKey, ShopMailServer, ShopWebhookSecret
from app.suppressions.models import Suppression

# (table, primary key, encrypted column) of every secret encrypted with RELANCE_SECRET_KEY.
ENCRYPTED_COLUMNS = (
    (ShopWebhookSecret, ShopWebhookSecret.id, ShopWebhookSecret.secret_encrypted),
    (ShopDkimKey, ShopDkimKey.shop_id, ShopDkimKey.private_key_encrypted),
    (ShopMailServer, ShopMailServer.shop_id, ShopMailServer.url_encrypted),
    (HookEndpoint, HookEndpoint.id, HookEndpoint.secret_encrypted),
    # Set only during a rotation's overlap (nulls are skipped).
    (HookEndpoint, HookEndpoint.id, HookEndpoint.previous_secret_encrypted),
    (PrestashopWebservice, PrestashopWebservice.shop_id, PrestashopWebservice.key_encrypted),
)


class UnreadableSecrets(Exception):
    """Some stored secrets decrypt with neither key: nothing was changed."""


@dataclass(frozen=True)
class Rekeyed:
    reencrypted: int
    already_current: int
    suppressions_rehashed: int = 0


def _decrypts(key: str, token: str) -> str | None:
    try:
        return decrypt(key, token)
    except ValueError:
        return None


async def rekey(engine: AsyncEngine, old_key: str, new_key: str) -> Rekeyed:
    """Re-encrypt every secret readable with `old_key` under `new_key`; all or nothing.

    Secrets already under `new_key` are left alone, so running it twice is harmless. One
    that neither key opens aborts the whole run before anything is written.
    """
    reencrypted = current = 0
    unreadable: list[str] = []
    async with transaction(engine) as conn:
        for table, key_column, column in ENCRYPTED_COLUMNS:
            rows = (await conn.execute(select(key_column, column))).all()
            for row_id, token in rows:
                if token is None:  # a nullable column (a rotation's previous secret)
                    continue
                if _decrypts(new_key, token) is not None:
                    current += 1
                    continue
                plain = _decrypts(old_key, token)
                if plain is None:
                    unreadable.append(f"{table.__tablename__} {row_id}")
                    continue
                moved = {column: encrypt(new_key, plain)}
                await conn.execute(update(table).where(key_column == row_id).values(moved))
                reencrypted += 1
        if unreadable:
            # Raising rolls the transaction back: no half-moved state.
            raise UnreadableSecrets(
                f"{len(unreadable)} stored secret(s) decrypt with neither key "
                f"({', '.join(unreadable[:5])}{', …' if len(unreadable) > 5 else ''}); "
                "nothing was changed"
            )
        rehashed = await _rehash_suppressions(conn, new_key)
    return Rekeyed(reencrypted, current, rehashed)


async def _rehash_suppressions(conn: AsyncConnection, new_key: str) -> int:
    """The suppression list is keyed by a hash under the secret key: move it to the new key.

    Entries whose address was erased keep only their old hash and cannot be carried over.
    """
    key = address_key(new_key)
    rows = (
        await conn.execute(
            select(Suppression.shop_id, Suppression.email_hash, Suppression.email).where(
                Suppression.email.is_not(None)
            )
        )
    ).all()
    moved = 0
    for shop_id, old_hash, email in rows:
        assert email is not None  # selected so
        new_hash = address_hash(key, normalize_email(email))
        if new_hash == old_hash:
            continue
        taken = await conn.scalar(
            select(Suppression.email_hash).where(
                Suppression.shop_id == shop_id, Suppression.email_hash == new_hash
            )
        )
        mine = (Suppression.shop_id == shop_id) & (Suppression.email_hash == old_hash)
        if taken is None:
            await conn.execute(update(Suppression).where(mine).values(email_hash=new_hash))
        else:
            await conn.execute(delete(Suppression).where(mine))
        moved += 1
    return moved
