"""Shops: creation, authentication, keys and secrets, settings, catalogue, sending pause."""

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Row, bindparam, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.errors import InvalidInput, NotFound, Unauthorized, validation_errors
from app.security import (
    address_key,
    decrypt,
    encrypt,
    hash_api_key,
    new_api_key,
    new_id,
    new_webhook_secret,
    webhook_secret_bytes,
)
from app.shops.models import OrderState, Shop, ShopApiKey, ShopWebhookSecret
from app.shops.schemas import ShopCreate, ShopCreated
from app.shops.settings import ShopSettings, parsed_settings
from app.timeutil import parse_duration


@dataclass(frozen=True)
class ShopAuth:
    """What the webhook inbox needs of a shop: its id and HMAC keys of its active secrets,
    and the key that recognises suppressed addresses (`security.address_key`)."""

    id: str
    keys: tuple[bytes, ...]
    settings: ShopSettings
    address_key: bytes


_SHOP_ID = re.compile(r"shp_[A-Za-z0-9]{1,36}")


def is_shop_id(value: str) -> bool:
    """Whether `value` can be a shop id: anything else is answered 404 without a query."""
    return _SHOP_ID.fullmatch(value) is not None


async def create(
    conn: AsyncConnection, shop: ShopCreate, secret_key: str, now: datetime
) -> ShopCreated:
    """Create a shop with default settings, one API key and one webhook secret."""
    name, timezone, language = shop.name, shop.timezone, shop.language
    shop_id = new_id("shp_")
    settings = ShopSettings(timezone=timezone, default_language=language)
    await conn.execute(
        insert(Shop).values(
            id=shop_id,
            name=name,
            timezone=timezone,
            language=language,
            settings=settings.model_dump(mode="json"),
            created_at=now,
            updated_at=now,
        )
    )
    api_key = await _add_api_key(conn, shop_id, now)
    secret = new_webhook_secret()
    await conn.execute(
        insert(ShopWebhookSecret).values(
            shop_id=shop_id, secret_encrypted=encrypt(secret_key, secret), created_at=now
        )
    )
    return ShopCreated(
        id=shop_id,
        name=name,
        timezone=timezone,
        language=language,
        sending_paused_at=None,
        sending_paused_reason=None,
        created_at=now,
        api_key=api_key,
        webhook_secret=secret,
    )


async def _add_api_key(conn: AsyncConnection, shop_id: str, now: datetime) -> str:
    key = new_api_key()
    await conn.execute(
        insert(ShopApiKey).values(
            shop_id=shop_id, key_hash=hash_api_key(key), prefix=key[:10], created_at=now
        )
    )
    return key


@dataclass(frozen=True)
class ShopAccount:
    """A shop as the API sees it once its key has been checked."""

    id: str
    name: str
    timezone: str
    language: str
    raw_settings: dict[str, Any]
    sending_paused_at: datetime | None
    sending_paused_reason: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def settings(self) -> ShopSettings:
        # Parsed on use, not at authentication: a shop whose stored settings no longer
        # validate can still be authenticated, and PATCH them back into shape.
        return parsed_settings(self.id, self.updated_at, self.raw_settings)


async def get(conn: AsyncConnection, shop_id: str) -> ShopAccount:
    row = (await conn.execute(select(Shop).where(Shop.id == shop_id))).mappings().first()
    if row is None:
        raise NotFound(f"No shop {shop_id!r}.")
    return _account(row)


def _account(row: Any) -> ShopAccount:
    return ShopAccount(
        id=row["id"],
        name=row["name"],
        timezone=row["timezone"],
        language=row["language"],
        raw_settings=row["settings"],
        sending_paused_at=row["sending_paused_at"],
        sending_paused_reason=row["sending_paused_reason"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def erase(conn: AsyncConnection, shop_id: str) -> None:
    """Erase a shop: every table's rows of it go with it (foreign keys cascade)."""
    if not is_shop_id(shop_id):
        raise NotFound("No such shop.")
    done = await conn.execute(delete(Shop).where(Shop.id == shop_id))
    if not done.rowcount:
        raise NotFound(f"No shop {shop_id!r}.")


async def authenticate(
    conn: AsyncConnection, shop_id: str, api_key: str, now: datetime
) -> ShopAccount:
    """The shop a key opens. Unknown key: 401; a key of another shop, or no such shop: 404."""
    if not is_shop_id(shop_id):
        raise NotFound("No such shop.")
    params = {"b_hash": hash_api_key(api_key), "b_now": now}
    row = (await conn.execute(_KEY_OWNER, params)).mappings().first()
    if row is None:
        raise Unauthorized("Unknown or expired API key.")
    if row["id"] != shop_id:
        raise NotFound(f"No shop {shop_id!r}.")
    return _account(row)


# The shop a key opens, in one round trip (every API request runs it).
_KEY_OWNER = (
    select(Shop)
    .join(ShopApiKey, ShopApiKey.shop_id == Shop.id)
    .where(
        ShopApiKey.key_hash == bindparam("b_hash"),
        or_(ShopApiKey.expires_at.is_(None), ShopApiKey.expires_at > bindparam("b_now")),
    )
)


async def rotate_api_key(
    conn: AsyncConnection, shop_id: str, previous_valid_for: str, now: datetime
) -> tuple[str, datetime]:
    """Issue a new key; the keys in use now stop working after `previous_valid_for`."""
    expires = now + parse_duration(previous_valid_for).approx()
    await conn.execute(
        update(ShopApiKey)
        .where(
            ShopApiKey.shop_id == shop_id,
            or_(ShopApiKey.expires_at.is_(None), ShopApiKey.expires_at > expires),
        )
        .values(expires_at=expires)
    )
    await conn.execute(
        delete(ShopApiKey).where(ShopApiKey.shop_id == shop_id, ShopApiKey.expires_at <= now)
    )
    return await _add_api_key(conn, shop_id, now), expires


async def rotate_webhook_secret(
    conn: AsyncConnection, shop_id: str, previous_valid_for: str, secret_key: str, now: datetime
) -> tuple[str, datetime | None]:
    """Add a new secret; the newest current one stays valid for a while; older ones go.

    So at most two secrets verify at any time, and the module can switch without downtime.
    """
    rows = (
        await conn.execute(
            select(ShopWebhookSecret.id)
            .where(ShopWebhookSecret.shop_id == shop_id, _active_secret(now))
            .order_by(ShopWebhookSecret.id.desc())
        )
    ).scalars()
    ids = list(rows)
    expires: datetime | None = None
    if ids:
        expires = now + parse_duration(previous_valid_for).approx()
        await conn.execute(
            update(ShopWebhookSecret)
            .where(ShopWebhookSecret.id == ids[0])
            .values(expires_at=expires)
        )
    await conn.execute(
        delete(ShopWebhookSecret).where(
            ShopWebhookSecret.shop_id == shop_id,
            or_(ShopWebhookSecret.id.in_(ids[1:]), ShopWebhookSecret.expires_at <= now),
        )
    )
    secret = new_webhook_secret()
    await conn.execute(
        insert(ShopWebhookSecret).values(
            shop_id=shop_id, secret_encrypted=encrypt(secret_key, secret), created_at=now
        )
    )
    return secret, expires


def _active_secret(now: Any) -> Any:
    """Secrets that still verify at `now` (a datetime, or a bind parameter)."""
    return or_(ShopWebhookSecret.expires_at.is_(None), ShopWebhookSecret.expires_at > now)


_WEBHOOK_AUTH = (
    select(Shop.id, Shop.settings, Shop.updated_at, ShopWebhookSecret.secret_encrypted)
    .outerjoin(
        ShopWebhookSecret,
        (ShopWebhookSecret.shop_id == Shop.id) & _active_secret(bindparam("b_now")),
    )
    .where(Shop.id.in_(bindparam("b_shops", expanding=True)))
)


async def webhook_auth(
    conn: AsyncConnection, shop_id: str, secret_key: str, now: datetime
) -> ShopAuth | None:
    """The active webhook secrets of a shop, or None when there is no such shop."""
    return (await webhook_auths(conn, [shop_id], secret_key, now)).get(shop_id)


async def webhook_auths(
    conn: AsyncConnection, shop_ids: Iterable[str], secret_key: str, now: datetime
) -> dict[str, ShopAuth]:
    """`webhook_auth` of several shops in one query; shops that do not exist are left out.

    Read at every call, never cached: a rotated secret or new settings count at once. Only
    what a stored row determines is cached (the decrypted key, the parsed settings).
    """
    wanted = sorted({shop_id for shop_id in shop_ids if is_shop_id(shop_id)})
    if not wanted:
        return {}
    rows = (await conn.execute(_WEBHOOK_AUTH, {"b_shops": wanted, "b_now": now})).all()
    by_shop: dict[str, list[Row[Any]]] = {}
    for row in rows:
        by_shop.setdefault(row.id, []).append(row)
    return {
        shop_id: ShopAuth(
            shop_id,
            tuple(
                _hmac_key(secret_key, r.secret_encrypted)
                for r in shop_rows
                if r.secret_encrypted is not None
            ),
            parsed_settings(shop_id, shop_rows[0].updated_at, shop_rows[0].settings),
            address_key(secret_key),
        )
        for shop_id, shop_rows in by_shop.items()
    }


@lru_cache(maxsize=4096)
def _hmac_key(secret_key: str, encrypted: str) -> bytes:
    # Decrypting is the costliest step of a webhook's check; a stored token never changes.
    return webhook_secret_bytes(decrypt(secret_key, encrypted))


# Called in the same transaction after a shop's settings changed (old, new): other domains
# react without shops importing them (e.g. review requests are rescheduled). Wired in app/main.py.
SettingsListener = Callable[
    [AsyncConnection, str, ShopSettings, ShopSettings, datetime], Awaitable[object]
]
SETTINGS_LISTENERS: list[SettingsListener] = []


async def update_settings(
    conn: AsyncConnection, shop: ShopAccount, changes: dict[str, Any], now: datetime
) -> ShopSettings:
    """Merge a partial update into the settings and validate the whole."""
    merged = {**shop.raw_settings, **changes}
    try:
        settings = ShopSettings.model_validate(merged)
    except ValidationError as exc:
        errors = [{**e, "loc": ["body", *e["loc"]]} for e in validation_errors(exc.errors())]
        raise InvalidInput("Invalid settings.", errors) from exc
    await _check_states_known(conn, shop.id, changes, settings)
    old = shop.settings
    await conn.execute(
        update(Shop)
        .where(Shop.id == shop.id)
        .values(
            settings=settings.model_dump(mode="json"),
            timezone=settings.timezone,
            language=settings.default_language,
            updated_at=now,
        )
    )
    for listener in SETTINGS_LISTENERS:
        await listener(conn, shop.id, old, settings, now)
    return settings


async def _check_states_known(
    conn: AsyncConnection, shop_id: str, changes: dict[str, Any], settings: ShopSettings
) -> None:
    """State ids being set must be in the shop's catalogue, once the module has sent one."""
    fields = [f for f in ("trigger_state_ids", "cancel_state_ids") if f in changes]
    if not fields:
        return
    known = set(
        (await conn.scalars(select(OrderState.state_id).where(OrderState.shop_id == shop_id))).all()
    )
    if not known:
        return  # no catalogue yet: PrestaShop's default ids are taken on trust
    errors = [
        {"loc": ["body", field, index], "msg": f"no order state {state_id} in the shop's catalogue"}
        for field in fields
        for index, state_id in enumerate(getattr(settings, field))
        if state_id not in known
    ]
    if errors:
        raise InvalidInput("Unknown order states.", errors)


async def replace_order_states(
    conn: AsyncConnection, shop_id: str, states: list[dict[str, Any]], now: datetime
) -> None:
    """Replace the shop's catalogue of order states with the one the module sent."""
    await conn.execute(delete(OrderState).where(OrderState.shop_id == shop_id))
    if states:
        await conn.execute(
            insert(OrderState), [{**s, "shop_id": shop_id, "updated_at": now} for s in states]
        )


async def list_order_states(conn: AsyncConnection, shop_id: str) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(OrderState).where(OrderState.shop_id == shop_id).order_by(OrderState.state_id)
    )
    return [dict(r) for r in rows.mappings()]


async def pause_sending(conn: AsyncConnection, shop_id: str, reason: str, now: datetime) -> bool:
    """Pause the shop's sending; False when it was paused already."""
    done = await conn.execute(
        update(Shop)
        .where(Shop.id == shop_id, Shop.sending_paused_at.is_(None))
        .values(sending_paused_at=now, sending_paused_reason=reason[:2000])
    )
    return bool(done.rowcount)


async def resume_sending(conn: AsyncConnection, shop_id: str) -> None:
    await conn.execute(
        update(Shop)
        .where(Shop.id == shop_id)
        .values(sending_paused_at=None, sending_paused_reason=None)
    )


async def paused_shops(conn: AsyncConnection) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(Shop.id, Shop.sending_paused_at, Shop.sending_paused_reason).where(
            Shop.sending_paused_at.is_not(None)
        )
    )
    return [dict(r) for r in rows.mappings()]
