"""The fast write path of messages keeps its guarantees: a message derived from a ticket that
another writer changed meanwhile is derived again, and the per-process calendar cache follows
every edit of the business hours and of the shop's zone.

March 2026 in Europe/Paris (UTC+1): Friday 6 March, Monday 9 March.
"""

from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db import transaction, utcnow
from app.shops.models import Shop
from app.tickets import messages
from app.tickets.schemas import MessageCreate
from tests.factories import create_shop
from tests.tickets.test_tickets_api import message, new_ticket, paris, read, url


@pytest.mark.postgres_only
async def test_a_message_is_derived_again_when_its_ticket_changed_after_it_was_read(
    client: httpx.AsyncClient, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = await create_shop(client)
    tid = (await new_ticket(client, shop))["id"]
    first = await message(client, shop, tid, "m-1", "customer", paris(9, 10), body="Où ?")
    reads: list[str | None] = []
    real_read = messages._read

    async def read_then_interfere(conn: AsyncConnection, shop_id: str, ticket_id: int) -> Any:
        got = await real_read(conn, shop_id, ticket_id)
        reads.append(got.version)
        if len(reads) == 1:
            # Another writer records the reply and commits between this read and its write.
            reply = MessageCreate.model_validate(
                {"external_id": "m-2", "author": "agent", "sent_at": paris(9, 12), "body": "Ici."}
            )
            async with transaction(engine) as other:
                await messages.record(other, shop_id, ticket_id, reply, utcnow())
        return got

    monkeypatch.setattr(messages, "_read", read_then_interfere)
    late = await message(client, shop, tid, "m-3", "customer", paris(9, 11), body="Et ma facture ?")
    monkeypatch.undo()

    # Read 1 (stale, its write refused), read 2 (the other writer's), read 3 (locked, written).
    assert len(reads) == 3 and reads[0] != reads[2]
    detail = await read(client, shop, tid)
    reply_id = next(m["id"] for m in detail["messages"] if m["external_id"] == "m-2")
    answers = {m["id"]: (m["answered_by"], m["reply_business_s"]) for m in detail["messages"]}
    # The 12:00 reply answers both questions, the 11:00 one recorded last included.
    assert answers[first["id"]] == (reply_id, 7200)
    assert answers[late["id"]] == (reply_id, 3600)
    assert (late["answered_by"], late["reply_business_s"]) == (reply_id, 3600)
    assert (detail["replies"], detail["exchanges"]) == (1, 3)


async def test_a_message_is_counted_in_the_hours_in_force_when_it_is_recorded(
    client: httpx.AsyncClient,
) -> None:
    """The calendar is cached per process, and rebuilt as soon as the hours change."""
    shop = await create_shop(client)
    before = (await new_ticket(client, shop, "t-1"))["id"]
    await message(client, shop, before, "a-1", "customer", paris(6, 17), body="Où ?")
    reply = await message(client, shop, before, "a-2", "agent", paris(9, 10), body="Ici.")
    assert (await read(client, shop, before))["first_reply_business_s"] == 2 * 3600
    assert reply["period_date"] == "2026-03-09"

    week = {str(d): [["08:00", "20:00"]] for d in range(1, 8)}  # every day 08:00-20:00
    hours: dict[str, Any] = {"timezone": "Europe/Paris", "week": week, "holidays": None}
    put = await client.put(url(shop, "/business-hours"), json=hours, headers=shop.auth)
    assert put.status_code == 200, put.text
    after = (await new_ticket(client, shop, "t-2"))["id"]
    await message(client, shop, after, "b-1", "customer", paris(6, 17), body="Où ?")
    await message(client, shop, after, "b-2", "agent", paris(9, 10), body="Ici.")
    # Fri 17:00-20:00 (3 h) + Sat 12 h + Sun 12 h + Mon 08:00-10:00 (2 h).
    assert (await read(client, shop, after))["first_reply_business_s"] == 29 * 3600
    assert (await read(client, shop, before))["first_reply_business_s"] == 2 * 3600


async def test_the_default_hours_follow_the_shop_s_time_zone(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    shop = await create_shop(client)
    tid = (await new_ticket(client, shop, "t-1", created_at=paris(5, 12)))["id"]
    # Friday 00:30 in Paris (Thursday 23:30 UTC): 24 business hours of 09:00-18:00 Paris time
    # end Tuesday 15:00 in Paris, 14:00 UTC.
    await message(client, shop, tid, "m-1", "customer", paris(6, 0, 30), body="Où ?")
    detail = await read(client, shop, tid)
    assert detail["messages"][0]["deadline_at"] == "2026-03-10T14:00:00Z"
    assert detail["period_date"] == "2026-03-06"

    # Changed behind this process's back (as another process would): the next message sees it.
    async with transaction(engine) as conn:
        await conn.execute(update(Shop).where(Shop.id == shop.id).values(timezone="UTC"))
    other = (await new_ticket(client, shop, "t-2", created_at=paris(5, 12)))["id"]
    await message(client, shop, other, "m-2", "customer", paris(6, 0, 30), body="Où ?")
    detail = await read(client, shop, other)
    assert detail["messages"][0]["deadline_at"] == "2026-03-10T15:00:00Z"
    assert detail["period_date"] == "2026-03-05"
