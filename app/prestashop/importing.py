"""Reading orders from the Webservice, and applying them through the webhook inbox.

Reading happens outside any transaction (never hold one across HTTP); applying a batch is one
transaction, so a failure leaves nothing half-imported. Each order's newest history row goes
to `webhooks.service.receive` under the synthetic webhook-id `reconcile:{order}:{history}`,
so the rules (max_age, cooldown, exclusions, suppression) apply exactly as for a webhook, and
the real webhook of the same row is a duplicate history, or the other way round.
"""

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.errors import InvalidInput
from app.orders.models import Order
from app.prestashop import mapping
from app.prestashop.client import Webservice, WebserviceError
from app.prestashop.mapping import WsCustomer, WsHistory, WsLanguage, WsOrder, WsState
from app.prestashop.vocabulary import Imported, RunStatus
from app.shops.service import ShopAuth
from app.suppressions import service as suppressions
from app.suppressions.models import Suppression
from app.webhooks import service as inbox
from app.webhooks.models import WebhookEvent

PAGE = 50  # orders per call; their histories and customers come in one call each
# Only what an event carries: `display=full` on customers would also fetch password hashes.
_CUSTOMER_FIELDS = "[id,email,firstname,lastname,id_lang,newsletter]"


@dataclass(frozen=True)
class Prepared:
    """One order read from the shop: its event, or why there is none."""

    order_id: int
    updated_at: datetime | None
    history_id: int | None = None
    event: dict[str, Any] | None = None
    email: str | None = None
    problem: Imported | None = None


@dataclass
class Catalogue:
    """What every page needs, read once per run: order states and language codes."""

    states: dict[int, WsState] = field(default_factory=dict)
    languages: dict[int, str] = field(default_factory=dict)


def _parsed(ws_resource: str, model: type[Any], items: Iterable[dict[str, Any]]) -> list[Any]:
    try:
        return [mapping.parse(model, item) for item in items]
    except mapping.ShapeError as exc:
        raise WebserviceError(RunStatus.MALFORMED, "GET", ws_resource, str(exc)) from None


async def catalogue(ws: Webservice) -> Catalogue:
    states = _parsed("order_states", WsState, await ws.rows("order_states", {"display": "full"}))
    languages = _parsed(
        "languages", WsLanguage, await ws.rows("languages", {"display": "[id,iso_code]"})
    )
    return Catalogue(
        {s.id: s for s in states}, {lang.id: lang.iso_code.lower()[:2] for lang in languages}
    )


def _any_of(ids: Iterable[int]) -> str:
    return "[" + "|".join(str(i) for i in sorted(set(ids))) + "]"


async def read_page(
    ws: Webservice, known: Catalogue, tz: str, since: datetime, until: datetime, offset: int
) -> list[Prepared]:
    """Orders updated in [since, until] (UTC; asked in the shop's local time), one page."""
    window = f"[{mapping.local_text(since, tz)},{mapping.local_text(until, tz)}]"
    raw = await ws.rows(
        "orders",
        {
            "display": "full",
            "filter[date_upd]": window,
            "date": "1",
            "sort": "[date_upd_ASC]",
            "limit": f"{offset},{PAGE}",
        },
    )
    return await _with_details(ws, known, tz, _parsed("orders", WsOrder, raw))


async def read_orders(
    ws: Webservice, known: Catalogue, tz: str, order_ids: Iterable[int]
) -> list[Prepared]:
    """The given orders (a thin event names one), with their histories and customers."""
    raw = await ws.rows("orders", {"display": "full", "filter[id]": _any_of(order_ids)})
    return await _with_details(ws, known, tz, _parsed("orders", WsOrder, raw))


async def _with_details(
    ws: Webservice, known: Catalogue, tz: str, orders: list[WsOrder]
) -> list[Prepared]:
    if not orders:
        return []
    histories: list[WsHistory] = _parsed(
        "order_histories",
        WsHistory,
        await ws.rows(
            "order_histories",
            {"display": "full", "filter[id_order]": _any_of(o.id for o in orders)},
        ),
    )
    customers: list[WsCustomer] = _parsed(
        "customers",
        WsCustomer,
        await ws.rows(
            "customers",
            {"display": _CUSTOMER_FIELDS, "filter[id]": _any_of(o.id_customer for o in orders)},
        ),
    )
    by_order: dict[int, list[WsHistory]] = {}
    for history in histories:
        by_order.setdefault(history.id_order, []).append(history)
    by_id = {c.id: c for c in customers}
    return [
        _prepare(o, by_order.get(o.id, []), by_id.get(o.id_customer), known, tz) for o in orders
    ]


def _prepare(
    order: WsOrder,
    histories: list[WsHistory],
    customer: WsCustomer | None,
    known: Catalogue,
    tz: str,
) -> Prepared:
    updated_at = mapping.local_moment(order.date_upd, tz)
    if not histories:
        return Prepared(order.id, updated_at, problem=Imported.NO_HISTORY)
    if customer is None:  # a deleted customer: no address to write to
        return Prepared(order.id, updated_at, problem=Imported.INVALID)
    try:
        newest, event = mapping.status_event(
            order, histories, customer, known.states, known.languages, tz
        )
    except mapping.ShapeError:
        return Prepared(order.id, updated_at, problem=Imported.INVALID)
    return Prepared(order.id, updated_at, newest.id, event, customer.email)


async def apply(
    conn: AsyncConnection, shop: ShopAuth, prepared: list[Prepared], now: datetime
) -> Counter[str]:
    """Hand each order's newest history row to the inbox; counts by outcome."""
    counts: Counter[str] = Counter()
    ids = [p.order_id for p in prepared]
    rows = await conn.execute(
        select(Order.order_id, Order.history_id).where(
            Order.shop_id == shop.id, Order.order_id.in_(ids)
        )
    )
    known = {order_id: history_id for order_id, history_id in rows}
    erased = await erased_hashes(conn, shop, [p.email for p in prepared if p.email])
    for p in prepared:
        if p.problem is not None or p.event is None or p.history_id is None:
            counts[p.problem or Imported.INVALID] += 1
        elif known.get(p.order_id, 0) >= p.history_id:
            counts[Imported.UP_TO_DATE] += 1
        elif p.email is not None and email_hash(shop, p.email) in erased:
            counts[Imported.ERASED] += 1
        else:
            counts[await _receive(conn, shop, p, now)] += 1
    return counts


def email_hash(shop: ShopAuth, email: str) -> str | None:
    try:
        return suppressions.hash_email(shop.address_key, email)
    except ValueError:
        return None


async def erased_hashes(conn: AsyncConnection, shop: ShopAuth, emails: list[str]) -> set[str]:
    """Hashes of these addresses that were erased (suppressed, with the address itself gone):
    such an order is not imported, so the address is not written back anywhere."""
    hashes = {h for e in emails if (h := email_hash(shop, e)) is not None}
    if not hashes:
        return set()
    found = await conn.scalars(
        select(Suppression.email_hash).where(
            Suppression.shop_id == shop.id,
            Suppression.email_hash.in_(sorted(hashes)),
            Suppression.email.is_(None),
        )
    )
    return set(found)


async def _receive(conn: AsyncConnection, shop: ShopAuth, p: Prepared, now: datetime) -> str:
    assert p.event is not None and p.history_id is not None  # checked by the caller
    body = json.dumps(p.event, ensure_ascii=False, separators=(",", ":")).encode()
    try:
        kind, event = inbox.parse(body)
    except InvalidInput:  # the shop's data breaks a rule of the wire format (say, the e-mail)
        return Imported.INVALID
    webhook_id = mapping.webhook_id(p.order_id, p.history_id)
    _, accepted = await inbox.receive(conn, shop, webhook_id, body, kind, event, now)
    if accepted.status == "duplicate":
        return "duplicate"
    outcome = await conn.scalar(
        select(WebhookEvent.outcome).where(WebhookEvent.id == accepted.event_id)
    )
    return str(outcome)
