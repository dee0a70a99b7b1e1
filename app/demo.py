"""`relance demo`: show the whole flow on the embedded defaults in well under a minute."""

import asyncio
import email
import email.policy
import json
import re
import secrets
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from app.config import get_settings
from app.mail.transport import FileTransport, transport_from_url
from app.main import create_app
from app.security import webhook_secret_bytes
from app.webhooks.signature import sign

STATES = {
    5: {"name": "Livré", "paid": True, "shipped": True, "delivery": True, "logable": True},
    6: {"name": "Annulé", "paid": False, "shipped": False, "delivery": False, "logable": False},
    10: {
        "name": "En attente de virement bancaire",
        "paid": False,
        "shipped": False,
        "delivery": False,
        "logable": False,
    },
}


def _event(
    order_id: int, history_id: int, state_id: int, email_: str, lang: str, name: str
) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    return {
        "type": "order.status_changed",
        "timestamp": now,
        "data": {
            "order": {
                "id": order_id,
                "reference": f"DEMO{order_id:05d}",
                "total_paid": "59.90",
                "currency": "EUR",
                "date_add": now,
            },
            "customer": {
                "id": order_id,
                "email": email_,
                "firstname": name,
                "lastname": "Demo",
                "language": lang,
            },
            "history": {"id": history_id, "date_add": now},
            "new_state": {"id": state_id, **STATES[state_id]},
            "old_state": None,
            "products": [
                {
                    "id": 12,
                    "name": "Mug en grès",
                    "quantity": 1,
                    "url": "https://shop.example/12-mug.html",
                }
            ],
        },
    }


async def _post(client: httpx.AsyncClient, shop: dict[str, Any], payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    msg_id, ts = f"msg_{uuid.uuid4().hex}", int(time.time())
    key = webhook_secret_bytes(shop["webhook_secret"])
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(key, msg_id, ts, body),
        "content-type": "application/json",
    }
    response = await client.post(
        f"/webhooks/prestashop/{shop['id']}", content=body, headers=headers
    )
    response.raise_for_status()
    data = payload["data"]
    print(
        f"  webhook: order {data['order']['id']} → state {data['new_state']['id']} "
        f"({data['new_state']['name']}): HTTP {response.status_code}"
    )


async def run() -> None:
    token = secrets.token_urlsafe(16)
    settings = get_settings().model_copy(
        update={"admin_token": token, "scheduler": "on", "dispatch_interval": 1.0}
    )
    app = create_app(settings)
    admin = {"Authorization": f"Bearer {token}"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=settings.public_url) as client:
            print("Creating two demo shops…")
            shops = []
            for name in ("Boutique Démo", "Virement Démo"):
                r = await client.post(
                    "/api/v1/shops",
                    headers=admin,
                    json={"name": name, "timezone": "Europe/Paris", "language": "fr"},
                )
                r.raise_for_status()
                shops.append(r.json())
            shop, wire = shops
            auth = {"Authorization": f"Bearer {shop['api_key']}"}
            wire_auth = {"Authorization": f"Bearer {wire['api_key']}"}
            await client.patch(
                f"/api/v1/shops/{shop['id']}/settings", headers=auth, json={"delay": "PT5S"}
            )
            await client.patch(
                f"/api/v1/shops/{wire['id']}/settings",
                headers=wire_auth,
                json={"delay": "PT5S", "trigger_state_ids": [10], "cancel_state_ids": [6]},
            )
            print("Posting signed webhooks (delay: 5 seconds)…")
            base = int(time.time()) % 100000 * 10
            await _post(client, shop, _event(base + 1, 1, 5, "marie@example.fr", "fr", "Marie"))
            await _post(client, shop, _event(base + 2, 1, 5, "john@example.com", "en", "John"))
            await _post(client, shop, _event(base + 3, 1, 5, "paolo@example.it", "it", "Paolo"))
            await _post(client, shop, _event(base + 3, 2, 6, "paolo@example.it", "it", "Paolo"))
            await _post(client, wire, _event(base + 4, 1, 10, "ana@example.es", "es", "Ana"))
            print("Waiting for the dispatcher…")
            deadline = time.monotonic() + 45
            pending: list[Any] = [1]
            while pending and time.monotonic() < deadline:
                await asyncio.sleep(1)
                pending = []
                for s in shops:
                    h = {"Authorization": f"Bearer {s['api_key']}"}
                    for status in ("scheduled", "sending"):
                        r = await client.get(
                            f"/api/v1/shops/{s['id']}/review-requests",
                            params={"status": status},
                            headers=h,
                        )
                        pending += r.json()["items"]
            print("\nReview requests:")
            for s in shops:
                h = {"Authorization": f"Bearer {s['api_key']}"}
                r = await client.get(f"/api/v1/shops/{s['id']}/review-requests", headers=h)
                for item in reversed(r.json()["items"]):
                    reason = f" ({item['reason']})" if item["reason"] else ""
                    print(
                        f"  {s['name']:<14} order {item['order_id']:<8} {item['language']} "
                        f"{item['status']}{reason}"
                    )
    outbox = transport_from_url(settings.mail_url, settings.smtp_timeout)
    if isinstance(outbox, FileTransport):
        _print_outbox(outbox.directory)
    print(
        f"\nThe merchant's dashboard: with `make run` serving this database, open "
        f"{settings.public_url.rstrip('/')}/dashboard and sign in with the key of "
        f"{shop['name']}:\n  {shop['api_key']}"
    )


def _print_outbox(directory: Path) -> None:
    files = sorted(directory.glob("*.eml"), key=lambda p: p.stat().st_mtime)[-10:]
    print(f"\nE-mails written to {directory.resolve()}/ (newest last):")
    for path in files:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        print(f"  {path.name}\n    To: {message['To']}  Subject: {message['Subject']}")
        text = message.get_body(("plain",))
        link = re.search(r"https?://\S+/r/[^\s?]+", text.get_content()) if text else None
        if link:
            print(f"    Review page: {link.group(0)}")
    print("\nWith `make run` serving this database, open a review page above in a browser.")
