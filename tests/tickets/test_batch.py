"""POST …/tickets/batch on both databases: a batch is recorded as its items posted one by one
would be (idempotence, refusals, waiting times compared with the single path), each item
alone, and the request's sizes are bounded where it is parsed.

March 2026 in Europe/Paris (UTC+1), default hours (Monday to Friday 09:00-18:00).
"""

import asyncio
import json
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db import transaction, utcnow
from app.tickets import batch, messages
from app.tickets.router import MAX_BATCH_BODY
from app.tickets.schemas import (
    MAX_BATCH_ITEMS,
    MAX_BATCH_MESSAGES,
    MAX_ITEM_MESSAGES,
    MessageCreate,
)
from tests.factories import ShopInfo, create_shop
from tests.problems import assert_problem, assert_validation_problem
from tests.tickets.test_tickets_api import message, new_ticket, paris, patch, read, url

# Fields of a ticket's detail that depend on when it was recorded, not on what.
_CLOCK = {"id", "updated_at", "created_at", "rating_url", "answered_by", "ticket_id"}


def ticket_body(external_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "external_id": external_id,
        "customer_email": "Marie.Dupont@Example.fr",
        "category": "after_sale",
        "language": "fr",
        "created_at": paris(6, 16, 55),
        **fields,
    }


def msg(external_id: str, author: str, sent_at: str, **fields: Any) -> dict[str, Any]:
    return {"external_id": external_id, "author": author, "sent_at": sent_at, **fields}


async def post_batch(
    client: httpx.AsyncClient, shop: ShopInfo, items: list[Any], status: int = 207
) -> dict[str, Any]:
    response = await client.post(
        url(shop, "/tickets/batch"), json={"items": items}, headers=shop.auth
    )
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


# A thread recorded out of order: a backfilled question, an earlier reply, a resolution,
# the customer's thanks, then a new question that reopens it.
THREAD = [
    msg("m-1", "customer", paris(6, 17), body="Bonjour, où est mon colis ?"),
    msg("m-2", "agent", paris(9, 12), body="Il arrive demain."),
    msg("m-3", "customer", paris(9, 11), body="Et ma facture ?"),
    msg("m-4", "agent", paris(9, 10, 30), body="Je regarde."),
    msg("m-5", "customer", paris(9, 12, 5), body="Merci beaucoup !"),
    msg("m-6", "bot", paris(9, 12, 6), body="Votre avis compte", automatic=True),
    msg("m-7", "customer", paris(10, 9), body="Toujours rien reçu, pourquoi ?"),
]


def comparable(detail: dict[str, Any]) -> dict[str, Any]:
    """A ticket's detail without what depends on when it was recorded, answers by position."""
    position = {m["id"]: m["external_id"] for m in detail["messages"]}
    out = {k: v for k, v in detail.items() if k not in _CLOCK}
    out["messages"] = [
        {**{k: v for k, v in m.items() if k not in _CLOCK}, "by": position.get(m["answered_by"])}
        for m in detail["messages"]
    ]
    out["status_changes"] = detail["status_changes"]
    return out


async def test_a_batch_gives_the_same_ticket_as_its_messages_posted_one_by_one(
    client: httpx.AsyncClient,
) -> None:
    one_by_one, batched = await create_shop(client, "One"), await create_shop(client, "Batch")
    tid = (await new_ticket(client, one_by_one, "t-1"))["id"]
    for m in THREAD[:5]:
        await message(client, one_by_one, tid, **m)
    await patch(client, one_by_one, tid, status="resolved", at=paris(9, 12, 10))
    for m in THREAD[5:]:
        await message(client, one_by_one, tid, **m)

    first = await post_batch(
        client, batched, [{"ticket": ticket_body("t-1"), "messages": THREAD[:5]}]
    )
    (result,) = first["results"]
    assert (result["status"], result["ticket_status"], first["failed"]) == (201, 201, 0)
    assert [(m["index"], m["status"], m["external_id"]) for m in result["messages"]] == [
        (n, 201, f"m-{n + 1}") for n in range(5)
    ]
    btid = result["ticket"]["id"]
    await patch(client, batched, btid, status="resolved", at=paris(9, 12, 10))
    # The rest by ticket id: the bot's message and the question that reopens the ticket.
    second = await post_batch(client, batched, [{"ticket_id": btid, "messages": THREAD[5:]}])
    assert second["results"][0]["ticket"]["status"] == "open"

    expected, got = await read(client, one_by_one, tid), await read(client, batched, btid)
    assert comparable(got) == comparable(expected)
    # And what that is, so that both paths being wrong the same way would still fail.
    answers = {m["external_id"]: m["reply_business_s"] for m in got["messages"]}
    # Fri 17:00-18:00 and Mon 09:00-10:30; Mon 11:00-12:00.
    assert (answers["m-1"], answers["m-3"]) == (9000, 3600)
    assert (got["reopens"], got["status"], got["replies"], got["exchanges"]) == (1, "open", 2, 6)
    assert [c["cause"] for c in got["status_changes"]] == ["created", "api", "customer_message"]
    ids = {m["external_id"]: m["id"] for m in got["messages"]}
    by_id = {m["external_id"]: m for m in result["messages"]}
    assert all(by_id[e]["id"] == ids[e] for e in by_id)


async def test_out_of_order_messages_in_one_batch_match_the_single_path(
    client: httpx.AsyncClient,
) -> None:
    """The whole thread in one request (timings derived once) against message by message."""
    one_by_one, batched = await create_shop(client, "One"), await create_shop(client, "Batch")
    tid = (await new_ticket(client, one_by_one, "t-1"))["id"]
    for m in THREAD:
        await message(client, one_by_one, tid, **m)
    body = await post_batch(client, batched, [{"ticket": ticket_body("t-1"), "messages": THREAD}])
    btid = body["results"][0]["ticket"]["id"]
    expected, got = await read(client, one_by_one, tid), await read(client, batched, btid)
    assert comparable(got) == comparable(expected)
    assert got["level_detected"] and got["first_reply_business_s"] == 9000
    assert body["results"][0]["ticket"] == {
        k: v for k, v in got.items() if k not in ("messages", "status_changes")
    }


async def test_the_same_batch_again_changes_nothing(client: httpx.AsyncClient) -> None:
    shop = await create_shop(client)
    items = [
        {"ticket": ticket_body("t-1"), "messages": THREAD[:3]},
        {"ticket": ticket_body("t-2"), "messages": [msg("n-1", "customer", paris(9, 9))]},
        # The same ticket again in the same batch: a repeat, its new message added.
        {"ticket": ticket_body("t-1"), "messages": [THREAD[0], THREAD[3]]},
    ]
    first = await post_batch(client, shop, items)
    assert [r["status"] for r in first["results"]] == [201, 201, 201]
    assert [r["ticket_status"] for r in first["results"]] == [201, 201, 200]
    assert [m["status"] for m in first["results"][2]["messages"]] == [200, 201]
    t1 = first["results"][0]["ticket"]["id"]
    before = await read(client, shop, t1)
    again = await post_batch(client, shop, items)
    assert [r["status"] for r in again["results"]] == [200, 200, 200]
    assert all(m["status"] == 200 for r in again["results"] for m in r["messages"])
    assert [[m["id"] for m in r["messages"]] for r in again["results"]] == [
        [m["id"] for m in r["messages"]] for r in first["results"]
    ]
    after = await read(client, shop, t1)
    assert after == before
    assert len(after["messages"]) == 4 and after["exchanges"] == 4
    # The single endpoints agree: the batch's ticket and message are repeats there too.
    single = await client.post(url(shop, "/tickets"), json=ticket_body("t-1"), headers=shop.auth)
    assert (single.status_code, single.json()["id"]) == (200, t1)
    await message(client, shop, t1, **THREAD[0], status=200)
    listed = await client.get(url(shop, "/tickets"), headers=shop.auth)
    assert len(listed.json()["items"]) == 2


async def test_a_bad_item_fails_alone_naming_its_index_and_field(
    client: httpx.AsyncClient,
) -> None:
    shop, other = await create_shop(client, "Mine"), await create_shop(client, "Theirs")
    theirs = (await new_ticket(client, other, "x-1"))["id"]
    mine = (await new_ticket(client, shop, "t-0"))["id"]
    await message(client, shop, mine, "taken", "customer", paris(9, 9))
    items: list[Any] = [
        {"ticket": ticket_body("t-1"), "messages": [msg("a-1", "customer", paris(9, 9))]},
        {"ticket": ticket_body("t-2", customer_email="marie@"), "messages": []},
        {"ticket": ticket_body("t-3"), "messages": [msg("b-1", "customer", "2026-03-09 10:00")]},
        {"ticket_id": theirs, "messages": [msg("c-1", "customer", paris(9, 9))]},
        {"ticket": ticket_body("t-4"), "messages": [msg("d-1", "agent", paris(9, 9)),
                                                    msg("taken", "customer", paris(9, 10))]},
        {"ticket": ticket_body("t-5"), "ticket_id": mine},
        "not an item",
        {"ticket": ticket_body("t-6"), "messages": [msg("e-1", "agent", paris(9, 11))]},
    ]  # fmt: skip
    body = await post_batch(client, shop, items)
    results = body["results"]
    assert [r["index"] for r in results] == list(range(8))
    assert [r["status"] for r in results] == [201, 422, 422, 404, 409, 422, 422, 201]
    assert (body["succeeded"], body["failed"]) == (2, 6)

    def locs(n: int) -> list[list[Any]]:
        problem = results[n]["problem"]
        assert problem["status"] == results[n]["status"] and problem["detail"]
        assert problem["type"].startswith("https://relance.dev/problems/")
        assert results[n]["ticket"] is None
        return [e["loc"] for e in problem["errors"]]

    assert locs(1) == [["body", "items", 1, "ticket", "customer_email"]]
    assert locs(2) == [["body", "items", 2, "messages", 0, "sent_at"]]
    assert locs(3) == [["body", "items", 3, "ticket_id"]]  # another shop's: not found
    assert locs(4) == [["body", "items", 4, "messages", 1, "external_id"]]
    assert f"ticket {mine}" in results[4]["problem"]["detail"]
    assert locs(5) == [["body", "items", 5]]
    assert locs(6) == [["body", "items", 6]]
    # The neighbours are committed; nothing of a failed item is (not even t-4's ticket).
    listed = await client.get(url(shop, "/tickets"), headers=shop.auth)
    assert sorted(t["external_id"] for t in listed.json()["items"]) == ["t-0", "t-1", "t-6"]
    t1 = await read(client, shop, results[0]["ticket"]["id"])
    assert [m["external_id"] for m in t1["messages"]] == ["a-1"]
    assert (await read(client, other, theirs))["messages"] == []
    # A message id of an item that failed is free for the next one.
    retry = await post_batch(
        client,
        shop,
        [{"ticket": ticket_body("t-4"), "messages": [msg("d-1", "agent", paris(9, 9))]}],
    )
    assert retry["results"][0]["status"] == 201


async def test_a_message_of_another_item_s_ticket_is_a_conflict(
    client: httpx.AsyncClient,
) -> None:
    shop = await create_shop(client)
    items = [
        {"ticket": ticket_body("t-1"), "messages": [msg("m-1", "customer", paris(9, 9))]},
        {"ticket": ticket_body("t-2"), "messages": [msg("m-1", "customer", paris(9, 9))]},
    ]
    results = (await post_batch(client, shop, items))["results"]
    assert [r["status"] for r in results] == [201, 409]
    assert results[1]["problem"]["errors"][0]["loc"] == ["body", "items", 1, "messages", 0,
                                                          "external_id"]  # fmt: skip


async def test_a_full_ticket_refuses_the_item_as_the_single_path_does(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(messages, "MAX_MESSAGES", 3)
    shop = await create_shop(client)
    tid = (await new_ticket(client, shop))["id"]
    await message(client, shop, tid, "m-0", "customer", paris(9, 9))
    items = [
        {"ticket_id": tid, "messages": [msg(f"m-{n}", "agent", paris(9, 10 + n))
                                        for n in range(1, 4)]},
        {"ticket_id": tid, "messages": [msg("m-0", "customer", paris(9, 9)),
                                        msg("m-1", "agent", paris(9, 11))]},
        {"ticket_id": tid, "messages": [msg("m-8", "agent", paris(9, 15)),
                                        msg("m-9", "agent", paris(9, 16))]},
    ]  # fmt: skip
    results = (await post_batch(client, shop, items))["results"]
    # Item 0 would make 4: refused at its third message, and as a whole. Item 2 likewise.
    assert [r["status"] for r in results] == [409, 201, 409]
    assert results[0]["problem"]["errors"][0]["loc"] == ["body", "items", 0, "messages", 2]
    assert results[2]["problem"]["errors"][0]["loc"] == ["body", "items", 2, "messages", 1]
    assert "3 messages" in results[0]["problem"]["detail"]
    assert [m["status"] for m in results[1]["messages"]] == [200, 201]
    detail = await read(client, shop, tid)
    assert [m["external_id"] for m in detail["messages"]] == ["m-0", "m-1"]
    # The single path agrees: a third message fits, a fourth is refused.
    await message(client, shop, tid, "m-7", "agent", paris(9, 17))
    refused = await client.post(
        url(shop, f"/tickets/{tid}/messages"), json=msg("m-10", "agent", paris(9, 17)),
        headers=shop.auth,
    )  # fmt: skip
    assert "3 messages" in assert_problem(refused, 409)["detail"]


@pytest.mark.parametrize(
    ("items", "loc"),
    [
        ([], ["body", "items"]),
        ([{"ticket_id": 1}] * (MAX_BATCH_ITEMS + 1), ["body", "items"]),
        (
            [
                {
                    "ticket_id": 1,
                    "messages": [msg("m", "agent", paris(9, 9))] * (MAX_ITEM_MESSAGES + 1),
                }
            ],
            ["body", "items", 0, "messages"],
        ),
        (
            [{"ticket_id": 1, "messages": [msg("m", "agent", paris(9, 9))] * MAX_ITEM_MESSAGES}]
            * (MAX_BATCH_MESSAGES // MAX_ITEM_MESSAGES + 1),
            ["body", "items"],
        ),
    ],
)
async def test_over_limit_sizes_are_refused_naming_the_field(
    client: httpx.AsyncClient, items: list[Any], loc: list[Any]
) -> None:
    shop = await create_shop(client)
    response = await client.post(
        url(shop, "/tickets/batch"), json={"items": items}, headers=shop.auth
    )
    assert_validation_problem(response, loc)
    listed = await client.get(url(shop, "/tickets"), headers=shop.auth)
    assert listed.json()["items"] == []


async def test_a_batch_needs_the_shop_s_key(client: httpx.AsyncClient) -> None:
    mine, theirs = await create_shop(client, "Mine"), await create_shop(client, "Theirs")
    body = {"items": [{"ticket": ticket_body("t-1")}]}
    foreign = await client.post(url(theirs, "/tickets/batch"), json=body, headers=mine.auth)
    assert_problem(foreign, 404)
    anonymous = await client.post(url(mine, "/tickets/batch"), content=b"{not json")
    assert_problem(anonymous, 401)
    listed = await client.get(url(theirs, "/tickets"), headers=theirs.auth)
    assert listed.json()["items"] == []


@pytest.mark.postgres_only
async def test_a_batch_raced_by_another_writer_is_taken_again(
    client: httpx.AsyncClient, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another request records one of the batch's message ids after the batch read them: the
    batch's savepoint is rolled back and the batch decided again, that item then refused."""
    shop = await create_shop(client)
    other = (await new_ticket(client, shop, "t-0"))["id"]
    real_next_ids = batch._next_ids
    calls = []

    async def next_ids_then_interfere(conn: AsyncConnection, count: int) -> list[int]:
        calls.append(count)
        if len(calls) == 1:
            late = MessageCreate.model_validate(msg("x-1", "customer", paris(9, 8)))
            async with transaction(engine) as meanwhile:
                await messages.record(meanwhile, shop.id, other, late, utcnow())
        return await real_next_ids(conn, count)

    monkeypatch.setattr(batch, "_next_ids", next_ids_then_interfere)
    items = [
        {"ticket": ticket_body("t-1"), "messages": [msg("a-1", "customer", paris(9, 9))]},
        {"ticket": ticket_body("t-2"), "messages": [msg("x-1", "customer", paris(9, 9))]},
    ]
    results = (await post_batch(client, shop, items))["results"]
    monkeypatch.undo()
    assert calls == [2, 1]  # taken again, and then x-1 was seen as another ticket's
    assert [r["status"] for r in results] == [201, 409]
    assert f"ticket {other}" in results[1]["problem"]["detail"]
    listed = await client.get(url(shop, "/tickets"), headers=shop.auth)
    assert sorted(t["external_id"] for t in listed.json()["items"]) == ["t-0", "t-1"]
    assert [m["external_id"] for m in (await read(client, shop, other))["messages"]] == ["x-1"]


async def test_a_body_over_the_limit_is_refused(client: httpx.AsyncClient) -> None:
    shop = await create_shop(client)
    items = [{"ticket": ticket_body("t-1"), "messages": [msg("m-1", "customer", paris(9, 9))]}]
    body = json.dumps({"items": items}).encode()
    response = await client.post(
        url(shop, "/tickets/batch"),
        content=body + b" " * (MAX_BATCH_BODY + 1 - len(body)),
        headers={**shop.auth, "Content-Type": "application/json"},
    )
    assert_problem(response, 413)
    listed = await client.get(url(shop, "/tickets"), headers=shop.auth)
    assert listed.json()["items"] == []


async def test_a_batch_and_single_messages_of_one_ticket_together_are_all_counted(
    client: httpx.AsyncClient,
) -> None:
    """The batch locks the tickets it reads; a single message derived meanwhile from a stale
    read is derived again (PostgreSQL), or waits (SQLite): none is lost or miscounted."""
    shop = await create_shop(client)
    tid = (await new_ticket(client, shop))["id"]
    authors = ["customer", "agent"] * 6
    batched = [
        msg(f"b-{n}", author, paris(9, 9, 2 * n), body="Bonjour ?")
        for n, author in enumerate(authors)
    ]
    singles = [
        message(client, shop, tid, f"s-{n}", author, paris(10, 9, 2 * n), body="Bonjour ?")
        for n, author in enumerate(authors)
    ]
    results = await asyncio.gather(
        post_batch(client, shop, [{"ticket_id": tid, "messages": batched[:6]}]),
        *singles[:6],
        post_batch(client, shop, [{"ticket_id": tid, "messages": batched[6:]}]),
        *singles[6:],
    )
    assert all(r["results"][0]["status"] == 201 for r in (results[0], results[7]))
    detail = await read(client, shop, tid)
    assert len(detail["messages"]) == 24
    assert (detail["replies"], detail["exchanges"]) == (12, 24)
    # Each question (even minute) is answered by the reply two minutes later: 120 s.
    customers = [m for m in detail["messages"] if m["author"] == "customer"]
    assert [m["reply_business_s"] for m in customers] == [120] * 12


@pytest.mark.postgres_only
async def test_a_batch_waiting_for_a_ticket_sees_what_its_writer_committed(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """A batch that had to wait for a ticket's lock derives it with the messages committed
    meanwhile (a locking read joined with the messages would see the new ticket row without
    them, and write counters that miss a message)."""
    shop = await create_shop(client)
    tid = (await new_ticket(client, shop))["id"]
    await message(client, shop, tid, "m-1", "customer", paris(9, 9), body="Où est-il ?")
    reply = MessageCreate.model_validate(msg("m-2", "agent", paris(9, 10), body="Ici."))
    async with transaction(engine) as other:
        await messages.record(other, shop.id, tid, reply, utcnow())  # holds the ticket's row
        late = [msg("m-3", "customer", paris(9, 11), body="Et ma facture ?")]
        pending = asyncio.create_task(
            post_batch(client, shop, [{"ticket_id": tid, "messages": late}])
        )
        await asyncio.sleep(0.3)
        assert not pending.done()  # waiting for the ticket
    result = (await pending)["results"][0]
    assert (result["status"], result["ticket"]["replies"], result["ticket"]["exchanges"]) == (
        201, 1, 3,
    )  # fmt: skip
    detail = await read(client, shop, tid)
    assert (detail["replies"], detail["exchanges"], detail["first_reply_business_s"]) == (
        1,
        3,
        3600,
    )
