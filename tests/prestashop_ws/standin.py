"""A PrestaShop Webservice stand-in: the documented JSON shapes of `orders`, `customers`,
`order_histories`, `order_states`, `languages`, `customer_threads` and `customer_messages`, with
Basic auth, filters, sort and paging.

Like PrestaShop it renders every value but `id` as a string, answers `[]` for an empty list,
and reads `filter[date_upd]=[a,b]` with `date=1` as an interval of shop-local times.
"""

import base64
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

KEY = "ABCDEFGHIJKLMNOPQRSTUVWXYZ123456"
URL = "http://127.0.0.1:8099/api"

_SINGULAR = {
    "orders": "order",
    "customers": "customer",
    "order_histories": "order_history",
    "order_states": "order_state",
    "languages": "language",
    "customer_threads": "customer_thread",
    "customer_messages": "customer_message",
}

STATES = {
    2: ("Paiement accepté", "1", "0", "0", "1"),
    4: ("Expédié", "1", "1", "1", "1"),
    5: ("Livré", "1", "1", "1", "1"),
    6: ("Annulé", "0", "0", "0", "0"),
    10: ("En attente de virement", "0", "0", "0", "0"),
}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"errors": [{"code": status, "message": message}]}, status_code=status)


@dataclass
class Shop:
    """The shop's data, and how it misbehaves."""

    key: str = KEY
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    denied: set[str] = field(default_factory=set)  # resources the key has no GET on
    failing: dict[str, int] = field(default_factory=dict)  # resource → HTTP status
    fail_times: int | None = None  # fail only this many calls, then answer
    malformed: set[str] = field(default_factory=set)
    timeout: set[str] = field(default_factory=set)
    calls: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name in _SINGULAR:
            self.tables.setdefault(name, [])
        self.tables["order_states"] = [
            {"id": sid, "name": [{"id": "1", "value": name}], "paid": paid,
             "shipped": shipped, "delivery": delivery, "logable": logable, "color": "#fff"}
            for sid, (name, paid, shipped, delivery, logable) in STATES.items()
        ]  # fmt: skip
        self.tables["languages"] = [{"id": 1, "iso_code": "fr", "name": "Français (French)"}]

    def customer(self, customer_id: int, email: str, id_lang: int = 1) -> None:
        self.tables["customers"].append(
            {"id": customer_id, "id_lang": str(id_lang), "email": email, "firstname": "Marie",
             "lastname": "Dupont", "newsletter": "0", "passwd": "$2y$10$hash"}
        )  # fmt: skip

    def order(
        self, order_id: int, customer_id: int, states: list[tuple[int, int, str]], updated: str
    ) -> None:
        """An order and its history rows `(history id, state id, local date)`."""
        self.tables["orders"].append(
            {"id": order_id, "id_customer": str(customer_id), "id_lang": "1",
             "id_currency": "1", "current_state": str(states[-1][1]), "id_shop": "1",
             "reference": f"REF{order_id}", "total_paid": "59.900000",
             "date_add": "2026-11-01 10:00:00", "date_upd": updated,
             "associations": {"order_rows": [
                 {"id": str(order_id * 10), "product_id": "12", "product_attribute_id": "0",
                  "product_quantity": "1", "product_name": "Mug en grès",
                  "product_reference": "MUG-01"}]}}
        )  # fmt: skip
        for history_id, state_id, at in states:
            self.tables["order_histories"].append(
                {"id": history_id, "id_employee": "0", "id_order_state": str(state_id),
                 "id_order": str(order_id), "date_add": at}
            )  # fmt: skip

    def move(self, order_id: int, history_id: int, state_id: int, at: str) -> None:
        """A new state for an order, as an employee's click would record it."""
        for order in self.tables["orders"]:
            if order["id"] == order_id:
                order["current_state"], order["date_upd"] = str(state_id), at
        self.tables["order_histories"].append(
            {"id": history_id, "id_employee": "1", "id_order_state": str(state_id),
             "id_order": str(order_id), "date_add": at}
        )  # fmt: skip

    def thread(
        self,
        thread_id: int,
        email: str,
        added: str,
        updated: str | None = None,
        *,
        order_id: int = 0,
        status: str = "open",
        id_lang: int = 1,
        id_shop: int = 1,
    ) -> None:
        """A customer-service thread (CustomerThread), as PrestaShop renders it."""
        self.tables["customer_threads"].append(
            {"id": thread_id, "id_shop": str(id_shop), "id_lang": str(id_lang),
             "id_contact": "2", "id_customer": "7", "id_order": str(order_id),
             "id_product": "0", "status": status, "email": email,
             "token": f"secret{thread_id:010d}", "date_add": added,
             "date_upd": updated or added,
             "associations": {"customer_messages": []}}
        )  # fmt: skip

    def message(
        self,
        message_id: int,
        thread_id: int,
        at: str,
        body: str,
        *,
        employee: int = 0,
        private: bool = False,
        touch: bool = True,
    ) -> None:
        """A message (CustomerMessage) of a thread; like PrestaShop's back office and contact
        form, it updates the thread's `date_upd` unless `touch` is False."""
        self.tables["customer_messages"].append(
            {"id": message_id, "id_employee": str(employee),
             "id_customer_thread": str(thread_id), "ip_address": "2130706433",
             "message": body, "file_name": "", "user_agent": "Mozilla/5.0",
             "private": "1" if private else "0", "date_add": at, "date_upd": at, "read": "0"}
        )  # fmt: skip
        for thread in self.tables["customer_threads"]:
            if thread["id"] == thread_id:
                thread["associations"]["customer_messages"].append({"id": str(message_id)})
                if touch:
                    thread["date_upd"] = max(thread["date_upd"], at)

    def set_status(self, thread_id: int, status: str, at: str) -> None:
        """An employee changes a thread's status (closes it, or reopens it)."""
        for thread in self.tables["customer_threads"]:
            if thread["id"] == thread_id:
                thread["status"], thread["date_upd"] = status, at

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return False
        user, _, _ = base64.b64decode(header[6:]).decode().partition(":")
        return user == self.key

    def _fail(self, resource: str) -> Response | None:
        if self.fail_times is not None:
            if self.fail_times <= 0:
                return None
            self.fail_times -= 1
        if resource in self.malformed:
            return Response("<br><b>Fatal error</b>: {oops", media_type="application/json")
        if resource in self.failing:
            status = self.failing[resource]
            return _error(status, "Internal error" if status >= 500 else "Refused")
        return None

    async def handle(self, request: Request) -> Response:
        resource = request.path_params["resource"]
        params = dict(request.query_params)
        self.calls.append((resource, params))
        if not self._authorized(request):
            return _error(401, "Authentification key is empty or not valid")
        if resource in self.denied:
            return _error(
                401, f'Resource of type "{resource}" is not allowed with this authentication key'
            )
        if resource not in _SINGULAR:
            return _error(404, f'Resource of type "{resource}" does not exists.')
        failure = self._fail(resource)
        if failure is not None:
            return failure
        if params.get("output_format") != "JSON":
            return Response("<prestashop/>", media_type="text/xml")
        item_id = request.path_params.get("item_id")
        if item_id is not None:
            found = [r for r in self.tables[resource] if str(r["id"]) == item_id]
            if not found:
                return _error(404, "Id not found")
            return JSONResponse({_SINGULAR[resource]: found[0]})
        rows = [r for r in self.tables[resource] if _matches(r, params)]
        rows = _sorted(rows, params.get("sort"))
        rows = _limited(rows, params.get("limit"))
        rows = [_displayed(r, params.get("display")) for r in rows]
        return JSONResponse({resource: rows} if rows else [])

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/{resource}", self.handle),
                Route("/api/{resource}/{item_id}", self.handle),
            ]
        )

    def transport(self) -> httpx.AsyncBaseTransport:
        return _Transport(self)


class _Transport(httpx.AsyncBaseTransport):
    """ASGI to the stand-in, or a timeout for the resources set to time out."""

    def __init__(self, shop: Shop) -> None:
        self.shop = shop
        self.asgi = httpx.ASGITransport(app=shop.app())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        resource = request.url.path.removeprefix("/api/").split("/")[0]
        if resource in self.shop.timeout:
            self.shop.calls.append((resource, dict(request.url.params)))
            raise httpx.ReadTimeout("timed out", request=request)
        return await self.asgi.handle_async_request(request)


def _matches(row: dict[str, Any], params: dict[str, str]) -> bool:
    for name, value in params.items():
        if not name.startswith("filter["):
            continue
        column = name[7:-1]
        cell = str(row.get(column, ""))
        inner = value.strip("[]")
        if "|" in inner or column.startswith("id"):
            if cell not in inner.split("|"):
                return False
        elif "," in inner:
            low, high = inner.split(",", 1)
            if params.get("date") != "1":
                raise ValueError("date filters need date=1")
            if not low <= cell <= high:
                return False
        elif cell.lower() != inner.lower():
            return False
    return True


def _sorted(rows: list[dict[str, Any]], sort: str | None) -> list[dict[str, Any]]:
    if not sort:
        return sorted(rows, key=lambda r: int(r["id"]))
    column, _, direction = sort.strip("[]").rpartition("_")
    return sorted(rows, key=lambda r: (str(r[column]), int(r["id"])), reverse=direction == "DESC")


def _limited(rows: list[dict[str, Any]], limit: str | None) -> list[dict[str, Any]]:
    if not limit:
        return rows
    offset, _, count = limit.rpartition(",")
    start = int(offset or 0)
    return rows[start : start + int(count)]


def _displayed(row: dict[str, Any], display: str | None) -> dict[str, Any]:
    if display == "full":
        return row
    if display:
        wanted = display.strip("[]").split(",")
        return {k: v for k, v in row.items() if k in wanted}
    return {"id": row["id"]}
