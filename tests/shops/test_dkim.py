"""DKIM: a key per shop, the DNS record to publish, and e-mails a verifier accepts."""

import asyncio
from typing import Any

import dkim
import httpx
from aiosmtpd.controller import Controller
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from tests.dispatch.test_dispatch import LATER, at, dispatcher
from tests.factories import ShopInfo, create_shop, order_event, post_event
from tests.problems import assert_problem, assert_validation_problem
from tests.smtp_sink import free_port


class RawSink:
    """Keeps the bytes of each message exactly as they arrived (a signature covers them)."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.original_content or envelope.content)
        return "250 OK"


async def create_key(client: httpx.AsyncClient, shop: ShopInfo, **body: Any) -> httpx.Response:
    return await client.post(
        f"/api/v1/shops/{shop.id}/dkim",
        json={"domain": "boutique.example", **body},
        headers=shop.auth,
    )


async def test_a_key_and_its_dns_record(client: httpx.AsyncClient) -> None:
    shop = await create_shop(client, from_email="avis@boutique.example")
    assert_problem(await client.get(f"/api/v1/shops/{shop.id}/dkim", headers=shop.auth), 404)
    created = await create_key(client, shop)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["record_name"] == "relance._domainkey.boutique.example"
    assert body["record_value"].startswith("v=DKIM1; k=rsa; p=MII")
    assert "private" not in created.text.lower()
    read = await client.get(f"/api/v1/shops/{shop.id}/dkim", headers=shop.auth)
    assert read.json() == body
    other = await create_shop(client, name="Autre")
    assert_problem(await client.get(f"/api/v1/shops/{shop.id}/dkim", headers=other.auth), 404)
    for bad in ({"domain": "not a domain"}, {"domain": "x.fr", "selector": "a b"}, {"x": 1}):
        assert_validation_problem(await create_key(client, shop, **bad))
    gone = await client.delete(f"/api/v1/shops/{shop.id}/dkim", headers=shop.auth)
    assert gone.status_code == 204
    assert_problem(await client.get(f"/api/v1/shops/{shop.id}/dkim", headers=shop.auth), 404)


async def test_sent_emails_carry_a_signature_the_published_key_verifies(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    shop = await create_shop(client, from_email="avis@boutique.example")
    record = (await create_key(client, shop, selector="s2026")).json()
    assert (await post_event(client, shop, order_event(1, 1, 5))).status_code == 202
    handler = RawSink()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        assert (await dispatcher(engine, settings, port).tick(now=at(LATER))).sent == 1
    finally:
        controller.stop()
    [raw] = handler.messages
    assert raw.startswith(b"DKIM-Signature:")

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        if name == f"{record['record_name']}.".encode() or name == record["record_name"].encode():
            return str(record["record_value"]).encode()
        return None

    assert await asyncio.to_thread(dkim.verify, raw, dnsfunc=dns)
    tampered = raw.replace(b"Subject: ", b"Subject: X", 1)
    assert not await asyncio.to_thread(dkim.verify, tampered, dnsfunc=dns)
