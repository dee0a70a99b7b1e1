"""`relance rekey`: re-encrypt the stored secrets from a previous secret key to the current one.

Databases created before keys were generated used the public development key; a changed
RELANCE_SECRET_KEY leaves the same problem. Every encrypted column is listed here, so one
command moves them all, in one transaction.
"""

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import transaction
from app.security import decrypt, encrypt
from app.shops.models import ShopWebhookSecret

# (table, primary key, encrypted column) of every secret encrypted with RELANCE_SECRET_KEY.
ENCRYPTED_COLUMNS = ((ShopWebhookSecret, ShopWebhookSecret.id, ShopWebhookSecret.secret_encrypted),)


class UnreadableSecrets(Exception):
    """Some stored secrets decrypt with neither key: nothing was changed."""


@dataclass(frozen=True)
class Rekeyed:
    reencrypted: int
    already_current: int


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
    return Rekeyed(reencrypted, current)
