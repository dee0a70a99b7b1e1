"""The Webservice's JSON shapes, and an order as the inbox's `order.status_changed` event.

Pure: no I/O, no clock. The event is built in the wire format the module sends, so it goes
through the same validation and the same rules as a webhook.
"""

from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.validation import PositiveId, StateId

# PrestaShop stores shop-local wall-clock times as text; a zero date means "never".
_FORMAT = "%Y-%m-%d %H:%M:%S"
_ZERO = "0000-00-00 00:00:00"

M = TypeVar("M", bound=BaseModel)


class _Ws(BaseModel):
    # Every value comes as a string ("5", "1"): lax mode reads them as the types below.
    model_config = ConfigDict(extra="ignore")


class WsOrderRow(_Ws):
    product_id: int
    product_attribute_id: int = 0
    product_name: str | None = Field(default=None, max_length=500)
    product_reference: str | None = Field(default=None, max_length=128)
    product_quantity: int = 1


class WsOrderAssociations(_Ws):
    order_rows: list[WsOrderRow] = Field(default=[], max_length=1000)


class WsOrder(_Ws):
    id: PositiveId
    id_customer: int
    id_lang: int | None = None
    current_state: StateId
    reference: str | None = Field(default=None, max_length=64)
    total_paid: str | None = Field(default=None, max_length=32)
    id_shop: int | None = None
    date_add: str = Field(max_length=32)
    date_upd: str = Field(max_length=32)
    associations: WsOrderAssociations = WsOrderAssociations()


class WsGroup(_Ws):
    id: int


class WsCustomerAssociations(_Ws):
    groups: list[WsGroup] = Field(default=[], max_length=1000)


class WsCustomer(_Ws):
    id: int
    email: str = Field(max_length=320)
    firstname: str | None = Field(default=None, max_length=255)
    lastname: str | None = Field(default=None, max_length=255)
    id_lang: int | None = None
    newsletter: bool | None = None
    associations: WsCustomerAssociations = WsCustomerAssociations()


class WsHistory(_Ws):
    id: PositiveId
    id_order: int
    id_order_state: StateId
    date_add: str = Field(max_length=32)


class WsName(_Ws):
    id: int
    value: str = Field(max_length=255)


class WsState(_Ws):
    id: StateId
    # One string when the call names a language, else one entry per language.
    name: str | list[WsName] | None = None
    paid: bool = False
    shipped: bool = False
    delivery: bool = False
    logable: bool = False

    def label(self, id_lang: int | None) -> str | None:
        if self.name is None or isinstance(self.name, str):
            return self.name
        chosen = [n.value for n in self.name if n.id == id_lang] or [n.value for n in self.name]
        return chosen[0] if chosen else None


class WsLanguage(_Ws):
    id: int
    iso_code: str = Field(max_length=8)


class ShapeError(ValueError):
    """An item that is not the documented shape; the message names the field."""


def parse(model: type[M], raw: dict[str, Any]) -> M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "item"
        raise ShapeError(f"{where}: {first['msg']}") from None


def local_text(moment: datetime, tz: str) -> str:
    """A UTC moment as the shop's wall-clock text, for `filter[date_upd]` with `date=1`."""
    return moment.astimezone(ZoneInfo(tz)).strftime(_FORMAT)


def local_moment(text: str, tz: str) -> datetime | None:
    """The shop's wall-clock text as an aware moment; None for a zero or unreadable date."""
    if text == _ZERO:
        return None
    try:
        return datetime.strptime(text, _FORMAT).replace(tzinfo=ZoneInfo(tz))
    except ValueError:
        return None


def webhook_id(order_id: int, history_id: int) -> str:
    """The synthetic `webhook-id` of an imported history row: importing it twice is a no-op."""
    return f"reconcile:{order_id}:{history_id}"


def _state(state_id: int, states: dict[int, WsState], id_lang: int | None) -> dict[str, Any]:
    known = states.get(state_id)
    if known is None:  # a state deleted since: its id still says what happened
        return {"id": state_id}
    return {
        "id": state_id,
        "name": known.label(id_lang),
        "paid": known.paid,
        "shipped": known.shipped,
        "delivery": known.delivery,
        "logable": known.logable,
    }


def status_event(
    order: WsOrder,
    histories: list[WsHistory],
    customer: WsCustomer,
    states: dict[int, WsState],
    languages: dict[int, str],
    tz: str,
) -> tuple[WsHistory, dict[str, Any]]:
    """The order's newest history row, and the event that tells of it (wire format).

    Only the newest row is applied: the state it names decides what is due, and older rows
    would be recorded as older anyway. `histories` must not be empty.
    """
    ordered = sorted(histories, key=lambda h: h.id)
    newest = ordered[-1]
    previous = ordered[-2] if len(ordered) > 1 else None
    id_lang = customer.id_lang or order.id_lang
    at = local_moment(newest.date_add, tz) or local_moment(order.date_upd, tz)
    if at is None:
        raise ShapeError("order_histories.date_add: not a date")
    ordered_at = local_moment(order.date_add, tz)
    groups = [g.id for g in customer.associations.groups]
    event = {
        "type": "order.status_changed",
        "timestamp": at.isoformat(),
        "data": {
            "order": {
                "id": order.id,
                "reference": order.reference,
                "id_lang": order.id_lang,
                "total_paid": order.total_paid,
                "date_add": None if ordered_at is None else ordered_at.isoformat(),
                "id_shop": order.id_shop,
            },
            "customer": {
                "id": customer.id,
                "email": customer.email,
                "firstname": customer.firstname,
                "lastname": customer.lastname,
                "language": languages.get(id_lang) if id_lang else None,
                "group_ids": groups or None,
                "newsletter": customer.newsletter,
            },
            "history": {"id": newest.id, "date_add": at.isoformat()},
            "new_state": _state(newest.id_order_state, states, id_lang),
            "old_state": None
            if previous is None
            else _state(previous.id_order_state, states, id_lang),
            "products": [
                {
                    "id": row.product_id,
                    "id_product_attribute": row.product_attribute_id,
                    "name": row.product_name,
                    "reference": row.product_reference,
                    "quantity": row.product_quantity,
                }
                for row in order.associations.order_rows
            ],
        },
    }
    return newest, event
