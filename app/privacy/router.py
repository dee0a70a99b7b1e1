"""`/api/v1/shops/{shop_id}/personal-data?email=`: export (GET) and erase (DELETE)."""

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AfterValidator, BaseModel

from app.db import utcnow
from app.deps import AuthFirstRoute, ConnDep, ReadConnDep, SettingsDep
from app.openapi import SHOP_RESPONSES
from app.privacy import service
from app.shops.deps import ReadShopDep, ShopDep
from app.validation import email_address

router = APIRouter(
    prefix="/api/v1/shops/{shop_id}/personal-data",
    tags=["personal data"],
    route_class=AuthFirstRoute,
    responses=SHOP_RESPONSES,
)

EmailQuery = Annotated[
    str,
    Query(max_length=254, description="The address, as the customer gave it."),
    AfterValidator(lambda v: email_address(v.strip())),
]


class PersonalData(BaseModel):
    """Every row of the shop about one address; rows are shown with all their columns."""

    email: str
    orders: list[dict[str, Any]]
    events: list[dict[str, Any]]
    review_requests: list[dict[str, Any]]
    reviews: list[dict[str, Any]]
    suppressions: list[dict[str, Any]]
    # Outgoing webhook deliveries that told of the address's requests or reviews.
    outgoing_webhooks: list[dict[str, Any]] = []
    # Support tickets of the address, each with its messages.
    tickets: list[dict[str, Any]] = []


class Erased(BaseModel):
    """How many rows of each kind were made anonymous; the address stays suppressed."""

    erased: dict[str, int]


@router.get("", summary="Everything held about one address (GDPR export)")
async def export_personal_data(
    shop: ReadShopDep, conn: ReadConnDep, settings: SettingsDep, email: EmailQuery
) -> PersonalData:
    return PersonalData.model_validate(
        await service.export(conn, shop.id, email, settings.secret_key)
    )


@router.delete("", summary="Erase one address from the shop's data (GDPR erasure)")
async def erase_personal_data(
    shop: ShopDep, conn: ConnDep, settings: SettingsDep, email: EmailQuery
) -> Erased:
    return Erased(erased=await service.erase(conn, shop.id, email, settings.secret_key, utcnow()))
