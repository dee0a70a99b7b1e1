"""Small async factories: shops, signed webhooks, order events."""

import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook

from app.config import Settings

# The `client_for` fixture: a client of an app of its own, started with these settings.
ClientFor = Callable[[Settings], Awaitable[httpx.AsyncClient]]

ADMIN = {"Authorization": "Bearer admin-token-for-tests"}

STATES: dict[int, dict[str, Any]] = {
    2: {
        "name": "Payment accepted",
        "paid": True,
        "shipped": False,
        "delivery": False,
        "logable": True,
    },
    3: {
        "name": "Processing in progress",
        "paid": True,
        "shipped": False,
        "delivery": True,
        "logable": True,
    },
    4: {"name": "Shipped", "paid": True, "shipped": True, "delivery": True, "logable": True},
    5: {"name": "Delivered", "paid": True, "shipped": True, "delivery": True, "logable": True},
    6: {"name": "Canceled", "paid": False, "shipped": False, "delivery": False, "logable": False},
    7: {"name": "Refunded", "paid": False, "shipped": False, "delivery": False, "logable": False},
    8: {
        "name": "Payment error",
        "paid": False,
        "shipped": False,
        "delivery": False,
        "logable": False,
    },
    10: {
        "name": "Awaiting bank wire payment",
        "paid": False,
        "shipped": False,
        "delivery": False,
        "logable": False,
    },
}


@dataclass
class ShopInfo:
    id: str
    api_key: str
    webhook_secret: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


async def create_shop(
    client: httpx.AsyncClient, name: str = "Ma Boutique", **settings: Any
) -> ShopInfo:
    response = await client.post(
        "/api/v1/shops",
        json={"name": name, "timezone": "Europe/Paris", "language": "fr"},
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    shop = ShopInfo(body["id"], body["api_key"], body["webhook_secret"])
    if settings:
        patched = await client.patch(
            f"/api/v1/shops/{shop.id}/settings", json=settings, headers=shop.auth
        )
        assert patched.status_code == 200, patched.text
    return shop


def order_event(
    order_id: int,
    history_id: int,
    state_id: int,
    at: datetime | None = None,
    *,
    email: str = "Marie.Dupont@Example.fr ",
    language: str = "fr",
    firstname: str = "Marie",
) -> dict[str, Any]:
    at = at or datetime.now(UTC)
    state = {"id": state_id, **STATES.get(state_id, {"name": f"State {state_id}"})}
    return {
        "type": "order.status_changed",
        "timestamp": at.isoformat(),
        "data": {
            "order": {
                "id": order_id,
                "reference": f"REF{order_id}",
                "id_lang": 1,
                "total_paid": "59.90",
                "currency": "EUR",
                "date_add": (at - timedelta(days=5)).isoformat(),
            },
            "customer": {
                "id": 7,
                "email": email,
                "firstname": firstname,
                "lastname": "Dupont",
                "language": language,
            },
            "history": {"id": history_id, "date_add": at.isoformat()},
            "new_state": state,
            "old_state": None,
            "products": [
                {
                    "id": 12,
                    "id_product_attribute": 0,
                    "name": "Mug en grès",
                    "reference": "MUG-01",
                    "quantity": 1,
                    "url": "https://shop.example/12-mug.html",
                    "image_url": "https://shop.example/img/12.jpg",
                }
            ],
        },
    }


def signed(
    secret: str, payload: Any, msg_id: str | None = None, timestamp: datetime | None = None
) -> tuple[bytes, dict[str, str]]:
    """Body and headers signed by the reference `standardwebhooks` package."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    timestamp = timestamp or datetime.now(UTC)
    signature = Webhook(secret).sign(msg_id, timestamp, body.decode())
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }
    return body, headers


async def post_event(
    client: httpx.AsyncClient, shop: ShopInfo, payload: Any, msg_id: str | None = None
) -> httpx.Response:
    body, headers = signed(shop.webhook_secret, payload, msg_id)
    return await client.post(f"/webhooks/prestashop/{shop.id}", content=body, headers=headers)


def now_plus(**delta: float) -> datetime:
    return datetime.now(UTC) + timedelta(**delta)


def unix() -> int:
    return int(time.time())
