"""Merchant templates API: save, read, delete, preview, and send a test e-mail."""

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from app.db import transaction, utcnow
from app.deps import AuthFirstRoute, BearerDep, ConnDep, EngineDep, ReadConnDep, SettingsDep
from app.emailtemplates import service
from app.emailtemplates.rendering import Language, MerchantTemplate, TemplateKind
from app.emailtemplates.schemas import (
    PreviewCreate,
    PreviewRead,
    TemplateRead,
    TemplateUpdate,
    TestEmailCreate,
    TestEmailRead,
)
from app.errors import NotFound, Unauthorized
from app.openapi import REF, SHOP_RESPONSES, Responses
from app.shops import service as shops
from app.shops.deps import ReadShopDep, ShopDep
from app.shops.service import ShopAccount

router = APIRouter(
    prefix="/api/v1/shops/{shop_id}",
    tags=["templates"],
    route_class=AuthFirstRoute,
    responses=SHOP_RESPONSES,
)

_MAIL_NOT_SENT: Responses = {
    502: {
        "description": "The mail server refused the e-mail or could not be reached.",
        "content": {
            "application/problem+json": {
                "schema": {"$ref": REF.format(model="Problem")},
                "example": {
                    "type": "https://relance.dev/problems/mail-not-sent",
                    "title": "The e-mail was not sent",
                    "status": 502,
                    "detail": "The mail server did not take the e-mail: 535 Authentication failed",
                },
            }
        },
    }
}


@router.get("/templates/{kind}/{language}", summary="A saved template")
async def get_template(
    shop: ReadShopDep, conn: ReadConnDep, kind: TemplateKind, language: Language
) -> TemplateRead:
    row = await service.get(conn, shop.id, kind, language)
    if row is None:
        raise NotFound(f"No {kind} template saved for {language!r}: the defaults apply.")
    return TemplateRead.model_validate(row)


@router.put(
    "/templates/{kind}/{language}",
    summary="Save a template (checked: it must compile and show both links)",
    responses={201: {"model": TemplateRead, "description": "Saved, where there was none."}},
)
async def put_template(
    shop: ShopDep,
    conn: ConnDep,
    kind: TemplateKind,
    language: Language,
    body: TemplateUpdate,
    response: Response,
) -> TemplateRead:
    template = MerchantTemplate(subject=body.subject, html=body.html, text=body.text)
    row, created = await service.save(conn, shop.id, kind, language, template, utcnow())
    if created:
        response.status_code = 201
    return TemplateRead.model_validate(row)


@router.delete(
    "/templates/{kind}/{language}",
    status_code=204,
    summary="Delete a template: the defaults apply again",
)
async def delete_template(
    shop: ShopDep, conn: ConnDep, kind: TemplateKind, language: Language
) -> None:
    if not await service.remove(conn, shop.id, kind, language):
        raise NotFound(f"No {kind} template saved for {language!r}.")


@router.post("/templates/preview", summary="Render the template in use, for a sample or an order")
async def preview(
    shop: ReadShopDep, conn: ReadConnDep, settings: SettingsDep, body: PreviewCreate
) -> PreviewRead:
    rendered, merchant = await service.preview(
        conn, shop, body.kind, body.language, body.order_id, settings, utcnow()
    )
    return PreviewRead(
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        template="merchant" if merchant else "default",
    )


async def _shop_in_own_transaction(
    shop_id: str, engine: EngineDep, credentials: BearerDep
) -> ShopAccount:
    # Not the request's transaction: the test e-mail is sent after every transaction has
    # ended, so that no connection is held across an SMTP conversation.
    if credentials is None:
        raise Unauthorized("A shop API key is required: 'Authorization: Bearer <api_key>'.")
    async with transaction(engine, read_only=True) as conn:
        return await shops.authenticate(conn, shop_id, credentials.credentials, utcnow())


@router.post(
    "/test-email",
    status_code=202,
    summary="Send one e-mail now, marked as a test (X-Relance-Test: 1), recorded nowhere",
    responses=_MAIL_NOT_SENT,
)
async def test_email(
    shop: Annotated[ShopAccount, Depends(_shop_in_own_transaction)],
    engine: EngineDep,
    settings: SettingsDep,
    body: TestEmailCreate,
) -> TestEmailRead:
    now = utcnow()
    async with transaction(engine, read_only=True) as conn:
        message, sender, merchant = await service.compose_test(
            conn, shop, body.kind, body.language, body.order_id, body.to, settings, now
        )
    await service.send_test(message, sender, body.to, settings)
    return TestEmailRead(
        status="sent",
        message_id=message.message_id,
        to=body.to,
        template="merchant" if merchant else "default",
    )
