"""Event payloads the PrestaShop module sends, and the inbox's answers."""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from app.validation import Int64, Moment, PositiveId, StateId, email_address
from app.webhooks.vocabulary import Outcome


def _money(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValueError("expected a decimal amount such as '59.90'")
    try:
        amount = Decimal(str(value))
    except ArithmeticError as exc:
        raise ValueError("expected a decimal amount such as '59.90'") from exc
    text = str(amount)
    # Stored as text of at most 32 characters (orders.total_paid); NaN and infinity are no sum.
    if not amount.is_finite() or len(text) > 32:
        raise ValueError("expected a finite decimal amount of at most 32 characters")
    return text


class _In(BaseModel):
    # Unknown fields are kept out, not refused: the module may send more than we read.
    model_config = ConfigDict(extra="ignore")


class OrderIn(_In):
    id: PositiveId
    reference: str | None = Field(default=None, max_length=64)
    id_lang: Int64 | None = None
    total_paid: Annotated[str | None, BeforeValidator(_money)] = None
    currency: str | None = Field(default=None, max_length=3)
    date_add: Moment | None = None
    id_shop: Int64 | None = None


class CustomerIn(_In):
    id: Int64 | None = None
    email: str = Field(max_length=320)
    firstname: str | None = Field(default=None, max_length=255)
    lastname: str | None = Field(default=None, max_length=255)
    language: str | None = Field(default=None, max_length=8)
    country: str | None = Field(default=None, min_length=2, max_length=2)
    group_ids: list[Int64] | None = Field(default=None, max_length=1000)
    newsletter: bool | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return email_address(value.strip())

    @field_validator("language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        return value.strip().lower()[:2] or None if value else None


class HistoryIn(_In):
    id: PositiveId
    date_add: Moment


class StateIn(_In):
    id: StateId
    name: str | None = Field(default=None, max_length=255)
    paid: bool = False
    shipped: bool = False
    delivery: bool = False
    logable: bool = False


class ProductIn(_In):
    id: Int64
    id_product_attribute: Int64 = 0
    name: str | None = Field(default=None, max_length=500)
    reference: str | None = Field(default=None, max_length=128)
    quantity: Int64 = 1
    url: str | None = Field(default=None, max_length=2000)
    image_url: str | None = Field(default=None, max_length=2000)
    # Optional identifiers (the product-reviews feed's `gtin`, `mpn`, `brand`).
    gtin: str | None = Field(default=None, max_length=255)
    mpn: str | None = Field(default=None, max_length=255)
    brand: str | None = Field(default=None, max_length=255)


class OrderStatusData(_In):
    order: OrderIn
    customer: CustomerIn
    history: HistoryIn
    new_state: StateIn
    old_state: StateIn | None = None
    products: list[ProductIn] = Field(default=[], max_length=1000)


class OrderStatusChanged(_In):
    type: Literal["order.status_changed"]
    timestamp: Moment | None = None
    data: OrderStatusData


class CatalogueState(_In):
    id: StateId
    names: dict[Annotated[str, Field(max_length=16)], Annotated[str, Field(max_length=255)]] = (
        Field(default={}, max_length=100)
    )
    paid: bool = False
    shipped: bool = False
    delivery: bool = False
    logable: bool = False


class OrderStatesData(_In):
    states: list[CatalogueState] = Field(max_length=1000)


class OrderStatesReplaced(_In):
    type: Literal["shop.order_states"]
    data: OrderStatesData


class ReturnIn(_In):
    id: PositiveId
    date_add: Moment
    state_id: StateId | None = None


class ReturnOrderIn(_In):
    id: PositiveId


class ReturnData(_In):
    order: ReturnOrderIn
    # `return` is a Python keyword: read it under another name.
    return_: ReturnIn = Field(alias="return")
    products: list[ProductIn] = Field(default=[], max_length=1000)


class ReturnRequested(_In):
    type: Literal["order.return_requested"]
    data: ReturnData


class WebhookAccepted(BaseModel):
    status: Literal["accepted", "duplicate", "ignored", "pong"]
    event_id: int | None = None


class EventRead(BaseModel):
    id: int
    webhook_id: str
    type: str
    order_id: int | None
    history_id: int | None
    occurred_at: datetime | None
    received_at: datetime
    outcome: Outcome
    request_id: int | None


class EventPage(BaseModel):
    items: list[EventRead]
    next_cursor: str | None
