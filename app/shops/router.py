"""Shop API: admin creation, settings, key and secret rotation, sending pause."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, status

from app.db import utcnow
from app.deps import (
    AdminDep,
    AuthFirstRoute,
    ConnDep,
    ReadConnDep,
    SettingsDep,
)
from app.errors import InvalidInput
from app.openapi import ADMIN_RESPONSES, SHOP_RESPONSES
from app.shops import dkim, mailserver, service
from app.shops.deps import ReadShopDep, ShopDep
from app.shops.schemas import (
    ApiKeyRotate,
    ApiKeyRotated,
    DkimCreate,
    DkimRead,
    MailServerPut,
    MailServerRead,
    OrderStateRead,
    SecretRotate,
    SecretRotated,
    SendingState,
    ShopCreate,
    ShopCreated,
    ShopRead,
    ShopSettingsUpdate,
)
from app.shops.service import ShopAccount
from app.shops.settings import ShopSettings

router = APIRouter(
    prefix="/api/v1/shops",
    tags=["shops"],
    route_class=AuthFirstRoute,
    responses=SHOP_RESPONSES,
)

SETTINGS_PATCH_EXAMPLES: dict[str, Any] = {
    "delay": {
        "summary": "Wait three days, send on weekdays 09:00-18:00",
        "value": {"delay": "P3D", "send_window": {"start": "09:00", "end": "18:00"}},
    },
    "reminders": {
        "summary": "One reminder a week later; any time of day",
        "value": {"reminders": ["P7D"], "send_window": None},
    },
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    dependencies=[AdminDep],
    summary="Create a shop (admin token)",
    responses=ADMIN_RESPONSES,
)
async def create_shop(body: ShopCreate, conn: ConnDep, settings: SettingsDep) -> ShopCreated:
    return await service.create(conn, body, settings.secret_key, utcnow())


@router.delete(
    "/{shop_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[AdminDep],
    summary="Erase a shop and all its data (admin token)",
    responses=ADMIN_RESPONSES,
)
async def delete_shop(
    shop_id: str,
    conn: ConnDep,
    confirm: Annotated[
        str, Query(max_length=64, description="The shop's id again: nothing is erased without it.")
    ],
) -> None:
    if confirm != shop_id:
        raise InvalidInput(
            "Repeat the shop's id in `confirm` to erase it.",
            [{"loc": ["query", "confirm"], "msg": "must equal the shop id"}],
        )
    await service.erase(conn, shop_id)


@router.get("/{shop_id}", summary="Read a shop")
async def read_shop(shop: ReadShopDep) -> ShopRead:
    return ShopRead.model_validate(shop, from_attributes=True)


@router.get("/{shop_id}/settings", summary="Read the shop's settings")
async def read_settings(shop: ReadShopDep) -> ShopSettings:
    return shop.settings


@router.patch("/{shop_id}/settings", summary="Change some settings")
async def patch_settings(
    shop: ShopDep,
    conn: ConnDep,
    changes: Annotated[ShopSettingsUpdate, Body(openapi_examples=SETTINGS_PATCH_EXAMPLES)],
) -> ShopSettings:
    """Only the fields sent change; the result is validated as a whole."""
    sent = changes.model_dump(mode="json", exclude_unset=True)
    return await service.update_settings(conn, shop, sent, utcnow())


@router.post("/{shop_id}/api-keys/rotate", summary="Issue a new API key")
async def rotate_api_key(
    shop: ShopDep, conn: ConnDep, body: ApiKeyRotate | None = None
) -> ApiKeyRotated:
    body = body or ApiKeyRotate()
    key, expires = await service.rotate_api_key(conn, shop.id, body.previous_valid_for, utcnow())
    return ApiKeyRotated(api_key=key, previous_expires_at=expires)


@router.post("/{shop_id}/webhook-secrets/rotate", summary="Issue a new webhook secret")
async def rotate_secret(
    shop: ShopDep, conn: ConnDep, settings: SettingsDep, body: SecretRotate | None = None
) -> SecretRotated:
    body = body or SecretRotate()
    secret, expires = await service.rotate_webhook_secret(
        conn, shop.id, body.previous_valid_for, settings.secret_key, utcnow()
    )
    return SecretRotated(webhook_secret=secret, previous_expires_at=expires)


@router.get("/{shop_id}/order-states", summary="The shop's catalogue of order states")
async def order_states(shop: ReadShopDep, conn: ReadConnDep) -> list[OrderStateRead]:
    settings = shop.settings
    names = {n.strip().casefold() for n in settings.trigger_state_names}

    def used_as(row: dict[str, Any]) -> str | None:
        if row["state_id"] in settings.cancel_state_ids:
            return "cancel"
        named = any(str(n).strip().casefold() in names for n in row["names"].values())
        return "trigger" if row["state_id"] in settings.trigger_state_ids or named else None

    rows = await service.list_order_states(conn, shop.id)
    return [OrderStateRead.model_validate({**r, "used_as": used_as(r)}) for r in rows]


@router.get("/{shop_id}/sending", summary="Whether sending is paused, and why")
async def sending_state(shop: ReadShopDep) -> SendingState:
    return _sending(shop)


@router.post("/{shop_id}/sending/resume", summary="Resume sending after fixing the cause")
async def resume_sending(shop: ShopDep, conn: ConnDep) -> SendingState:
    await service.resume_sending(conn, shop.id)
    return SendingState(paused=False, paused_at=None, reason=None)


def _sending(shop: ShopAccount) -> SendingState:
    paused_at = shop.sending_paused_at
    return SendingState(
        paused=paused_at is not None, paused_at=paused_at, reason=shop.sending_paused_reason
    )


def _dkim(key: dkim.DkimKey) -> DkimRead:
    return DkimRead(
        domain=key.domain,
        selector=key.selector,
        record_name=key.record_name,
        record_value=key.record_value,
    )


@router.post(
    "/{shop_id}/dkim",
    status_code=status.HTTP_201_CREATED,
    summary="Generate the shop's DKIM key (replacing any previous one)",
)
async def create_dkim(
    shop: ShopDep, conn: ConnDep, settings: SettingsDep, body: DkimCreate
) -> DkimRead:
    key = await dkim.create(
        conn, shop.id, body.domain.lower(), body.selector.lower(), settings.secret_key, utcnow()
    )
    return _dkim(key)


@router.get("/{shop_id}/dkim", summary="The DNS record of the shop's DKIM key")
async def read_dkim(shop: ReadShopDep, conn: ReadConnDep) -> DkimRead:
    return _dkim(await dkim.get(conn, shop.id))


@router.delete(
    "/{shop_id}/dkim",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Stop signing the shop's e-mails",
)
async def delete_dkim(shop: ShopDep, conn: ConnDep) -> None:
    await dkim.remove(conn, shop.id)


@router.put("/{shop_id}/mail-server", summary="Send the shop's e-mails through its own server")
async def put_mail_server(
    shop: ShopDep, conn: ConnDep, settings: SettingsDep, body: MailServerPut
) -> MailServerRead:
    server = await mailserver.put(
        conn, shop.id, body.url, settings.secret_key, utcnow(), body.max_connections
    )
    return MailServerRead.model_validate(server, from_attributes=True)


@router.get("/{shop_id}/mail-server", summary="The shop's own SMTP server (no password)")
async def read_mail_server(
    shop: ReadShopDep, conn: ReadConnDep, settings: SettingsDep
) -> MailServerRead:
    server = await mailserver.get(conn, shop.id, settings.secret_key)
    return MailServerRead.model_validate(server, from_attributes=True)


@router.delete(
    "/{shop_id}/mail-server",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Send through RELANCE_MAIL_URL again",
)
async def delete_mail_server(shop: ShopDep, conn: ConnDep) -> None:
    await mailserver.remove(conn, shop.id)
