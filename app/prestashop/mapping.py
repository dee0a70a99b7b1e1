"""The Webservice's JSON shapes, an order as the inbox's `order.status_changed` event, and a
customer-service thread as an item of the tickets' batch write.

Pure: no I/O, no clock. The event is built in the wire format the module sends, so it goes
through the same validation and the same rules as a webhook; a thread likewise becomes the
body of one item of `POST …/tickets/batch`.
"""

from datetime import datetime
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

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


def _blank_is_none(value: Any) -> Any:
    # PrestaShop renders an unset integer column as "" rather than "0" in some versions.
    return None if value == "" else value


OptionalInt = Annotated[int | None, BeforeValidator(_blank_is_none)]


class WsThread(_Ws):
    """A `customer_threads` item (PrestaShop's CustomerThread; `token` is never asked for: it
    opens the thread to whoever holds it)."""

    id: PositiveId
    id_shop: OptionalInt = None
    id_lang: OptionalInt = None
    id_customer: OptionalInt = None
    id_order: OptionalInt = None  # 0: not about an order
    email: str | None = Field(default=None, max_length=320)
    status: str = Field(max_length=16)  # open, closed, pending1, pending2
    date_add: str = Field(max_length=32)
    date_upd: str = Field(max_length=32)


class WsMessage(_Ws):
    """A `customer_messages` item (PrestaShop's CustomerMessage); `message` is bounded when
    mapped, not here, so one long message is truncated rather than refused."""

    id: PositiveId
    id_customer_thread: int
    id_employee: OptionalInt = None  # > 0: written by an employee in the back office
    message: str | None = None
    private: bool = False
    date_add: str = Field(max_length=32)


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


# Thread → ticket (docs/prestashop-webservice.md, "Customer service threads").
CHANNEL = "prestashop"
MAX_BODY = 65_536  # as the tickets API bounds a message's body
ITEM_MESSAGES = 200  # as the tickets API bounds the messages of one batch item
TRUNCATED = "\n[… truncated by Relance: the message was over 65,536 characters]"


def thread_external_id(thread_id: int) -> str:
    return f"ps-thread-{thread_id}"


def message_external_id(message_id: int) -> str:
    return f"ps-message-{message_id}"


def resolved(status: str) -> bool:
    """PrestaShop's `closed` is a resolved ticket; `open`, `pending1`, `pending2` are open."""
    return status.strip().lower() == "closed"


def thread_items(
    thread: WsThread, messages: list[WsMessage], languages: dict[int, str], tz: str
) -> tuple[list[dict[str, Any]], list[str]]:
    """The batch items (wire format) of one thread, its messages in the order sent and split
    into items of `ITEM_MESSAGES`; and notes for the run's report (truncations, skips).

    No item when the thread has no creation date (nothing to measure from)."""
    ext = thread_external_id(thread.id)
    created_at = local_moment(thread.date_add, tz)
    if created_at is None:
        return [], [f"{ext}: not imported, no creation date"]
    notes: list[str] = []
    ticket: dict[str, Any] = {
        "external_id": ext,
        "customer_email": thread.email or "",
        "order_id": thread.id_order or None,
        "language": languages.get(thread.id_lang) if thread.id_lang else None,
        "channel": CHANNEL,
        "category": "after_sale" if thread.id_order else "pre_sale",
        "created_at": created_at.isoformat(),
    }
    bodies: list[dict[str, Any]] = []
    for m in sorted(messages, key=lambda m: (m.date_add, m.id)):
        sent_at = local_moment(m.date_add, tz)
        if sent_at is None:
            notes.append(f"{message_external_id(m.id)}: not imported, no date")
            continue
        body = (m.message or "").replace("\x00", "")
        if len(body) > MAX_BODY:
            body = body[: MAX_BODY - len(TRUNCATED)] + TRUNCATED
            notes.append(f"{message_external_id(m.id)}: body over {MAX_BODY} characters, truncated")
        bodies.append(
            {
                "external_id": message_external_id(m.id),
                "author": "agent" if (m.id_employee or 0) > 0 else "customer",
                "public": not m.private,
                "sent_at": sent_at.isoformat(),
                "body": body or None,
            }
        )
    chunks = [bodies[i : i + ITEM_MESSAGES] for i in range(0, len(bodies), ITEM_MESSAGES)]
    return [{"ticket": ticket, "messages": chunk} for chunk in chunks or [[]]], notes
