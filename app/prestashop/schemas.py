"""API schemas of a shop's PrestaShop Webservice settings and of a backfill."""

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.hooks.addresses import MAX_URL
from app.prestashop.vocabulary import RunStatus
from app.shops.settings import DurationStr
from app.timeutil import parse_duration

MAX_BACKFILL_DAYS = 365


def _printable(value: str) -> str:
    if any(ord(c) < 33 or ord(c) == 127 for c in value):
        raise ValueError("must not contain spaces or control characters")
    return value


def _period(value: str) -> str:
    if parse_duration(value).approx().days > MAX_BACKFILL_DAYS:
        raise ValueError(f"at most {MAX_BACKFILL_DAYS} days")
    return value


class WebserviceUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"url": "https://shop.example/api", "key": "ABCDEFGHIJKLMNOPQRSTUVWXYZ123456"}
            ]
        },
    )

    url: str = Field(
        min_length=1,
        max_length=MAX_URL,
        description="The shop's address or its `/api` URL (https:// or http://).",
    )
    key: Annotated[str, AfterValidator(_printable)] = Field(
        min_length=8,
        max_length=128,
        description="The Webservice key (GET on orders, order_histories, order_states, "
        "customers, languages; and on customer_threads, customer_messages to import the "
        "shop's customer service as tickets). Stored encrypted, never shown again.",
    )
    thin_events: bool = Field(
        default=False,
        description="Accept the `ps_webhooks` module's order-history events on a path of their "
        "own; enabling it answers that path's token once.",
    )


class WebserviceRead(BaseModel):
    url: str
    thin_events: bool
    reconciled_until: datetime | None = Field(
        description="The newest order update reconciliation has read."
    )
    last_run_at: datetime | None
    last_status: RunStatus | None = Field(description="How the last reconciliation ended.")
    last_error: str | None = Field(description="What failed: the resource and the method.")
    created_at: datetime
    updated_at: datetime


class WebserviceSaved(WebserviceRead):
    thin_events_token: str | None = Field(
        default=None,
        description="Shown once, when thin events are enabled: the module posts to "
        "`/prestashop/thin-events/{token}`. Never logged, never shown again.",
    )


class BackfillCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"since": "P30D"}]})

    since: Annotated[DurationStr, AfterValidator(_period)] = Field(
        default="P30D", description="How far back: orders updated since now minus this."
    )
    dry_run: bool = Field(default=False, description="Report what would happen; change nothing.")


class BackfillThreads(BaseModel):
    imported: bool = Field(
        description="false: the key lacks GET on customer_threads or customer_messages."
    )
    threads: int = Field(description="Customer-service threads read from the shop.")
    messages: int = Field(description="Their messages recorded (new ones only).")
    outcomes: dict[str, int] = Field(
        description="Threads by outcome: `created`, `updated`, `unchanged`, `resolved`, "
        "`reopened`, `invalid`, `erased`, `failed`."
    )
    notes: list[str] = Field(
        description="What the merchant may want to know: a missing permission, a truncated "
        "message, an invalid thread."
    )


class BackfillRead(BaseModel):
    since: datetime
    until: datetime
    dry_run: bool
    orders: int = Field(description="Orders read from the shop.")
    outcomes: dict[str, int] = Field(
        description="Orders by outcome: the inbox's (`scheduled`, `skipped`, `cancelled`, "
        "`recorded`, …) or `up_to_date`, `erased`, `invalid`, `no_history`."
    )
    threads: BackfillThreads | None = Field(
        default=None, description="The period's customer-service threads, recorded as tickets."
    )


class ThinEvent(BaseModel):
    """What the ps_webhooks module posts: `{"action", "entity", "data"}`, the object's fields.

    Only the order it is about is read from it; the Webservice gives the rest.
    """

    action: str = Field(max_length=20)
    entity: str = Field(max_length=100)
    data: dict[str, Any]

    def order_id(self) -> int | None:
        """The order an `OrderHistory` (its `id_order`) or an `Order` (its `id`) is about."""
        field = {"orderhistory": "id_order", "order": "id"}.get(self.entity.lower())
        if field is None or self.action.lower() not in ("add", "update"):
            return None
        value = self.data.get(field)
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31:
            return None
        return value


class ThinEventAnswer(BaseModel):
    status: str = Field(
        description="`ignored` (not an order event), `not_found` (the shop does not have the "
        "order), or the order's outcome as a backfill reports it."
    )
    order_id: int | None = None
