"""Poison deliveries never jam the dispatcher: each fails (or leaves) alone, innocents leave once.

Poisons sit at the head of the queue, where they used to end every tick: a non-ASCII recipient
(SMTPUTF8 never asked for), a shop whose stored settings overflow (`max_age`, `reminders`), a
request whose order row is gone. Real aiosmtpd servers, with and without SMTPUTF8.
"""

import asyncio
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from tests.dispatch.poison_support import (
    BROKEN_SETTINGS,
    KINDS,
    MAX_AGE_KIND,
    NO_ORDER_KIND,
    NON_ASCII,
    NON_ASCII_KIND,
    REMINDERS_KIND,
    Outcome,
    Planted,
    check_run,
    outcomes,
    plant,
    received,
    sink,
)
from tests.dispatch.test_dispatch import LATER, at, dispatcher, requests_of
from tests.dispatch.test_multiprocess import Worker, start_workers, worker_env  # noqa: F401
from tests.factories import create_shop, order_event, post_event
from tests.problems import assert_validation_problem
from tests.smtp_sink import SinkHandler

MAX_ATTEMPTS = 3
PARIS = ZoneInfo("Europe/Paris")  # the factory shop's zone


async def run_poisoned(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    settings: Settings,
    *,
    kinds: Sequence[str],
    smtputf8: bool,
) -> tuple[Planted, dict[int, Outcome], Counter[str], SinkHandler]:
    """25 innocents behind two poisons of each kind; one worker in this process ticks."""
    base = datetime.now(UTC)
    planted = await plant(client, engine, innocents=25, per_kind=2, kinds=kinds, base=base)
    with sink(smtputf8=smtputf8) as (handler, port):
        worker = dispatcher(engine, settings, port, max_attempts=MAX_ATTEMPTS, claim_batch=10)
        # An hour apart: past the lease (120 s) and any back-off, so a poison that is retried
        # (or left `sending`) is taken again each round, up to its attempt limit.
        for hour in range(MAX_ATTEMPTS + 2):
            await worker.tick(now=base + timedelta(hours=hour))
    return planted, await outcomes(engine), received(handler), handler


async def test_non_ascii_recipient_leaves_through_a_server_offering_smtputf8(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    planted, rows, at_sink, handler = await run_poisoned(
        client, engine, settings, kinds=[NON_ASCII_KIND], smtputf8=True
    )
    check_run(planted, rows, at_sink, smtputf8=True, max_attempts=MAX_ATTEMPTS)
    [poison] = [d for d in planted.poisons if rows[d].recipient == NON_ASCII]
    assert rows[poison].attempts == 1
    with handler.lock:
        envelopes = [
            rcpts
            for message, (_, rcpts) in zip(handler.messages, handler.envelopes, strict=True)
            if message["Message-ID"] == rows[poison].message_id
        ]
    assert envelopes == [[NON_ASCII]]


async def test_non_ascii_recipient_fails_alone_without_smtputf8(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    planted, rows, at_sink, handler = await run_poisoned(
        client, engine, settings, kinds=[NON_ASCII_KIND], smtputf8=False
    )
    check_run(planted, rows, at_sink, smtputf8=False, max_attempts=MAX_ATTEMPTS)
    # Retrying cannot help: the server will never offer SMTPUTF8 for this one message.
    assert {rows[d].attempts for d in planted.poisons} == {1}
    with handler.lock:
        recipients = [r for _, rcpts in handler.envelopes for r in rcpts]
    assert all(r.isascii() for r in recipients) and len(recipients) == len(planted.innocents)


@pytest.mark.parametrize("kind", [MAX_AGE_KIND, REMINDERS_KIND])
async def test_shop_with_invalid_stored_settings_fails_alone(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings, kind: str
) -> None:
    planted, rows, at_sink, _ = await run_poisoned(
        client, engine, settings, kinds=[kind], smtputf8=True
    )
    check_run(planted, rows, at_sink, smtputf8=True, max_attempts=MAX_ATTEMPTS)
    assert set(planted.poisons.values()) == {kind} and kind in BROKEN_SETTINGS


async def test_delivery_whose_order_row_is_missing_fails_alone(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    planted, rows, at_sink, _ = await run_poisoned(
        client, engine, settings, kinds=[NO_ORDER_KIND], smtputf8=True
    )
    check_run(planted, rows, at_sink, smtputf8=True, max_attempts=MAX_ATTEMPTS)


@pytest.mark.parametrize("smtputf8", [True, False], ids=["smtputf8", "ascii_only"])
async def test_every_kind_of_poison_in_one_batch(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings, smtputf8: bool
) -> None:
    planted, rows, at_sink, _ = await run_poisoned(
        client, engine, settings, kinds=KINDS, smtputf8=smtputf8
    )
    assert sorted(Counter(planted.poisons.values()).values()) == [2, 2, 2, 2]
    check_run(planted, rows, at_sink, smtputf8=smtputf8, max_attempts=MAX_ATTEMPTS)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("reminders", ["P99999999D"]),
        ("reminders", ["P1D", "P9999999999D"]),
        ("max_age", "P9999999999D"),
        ("delay", "PT99999999999S"),
        ("customer_cooldown", 10**15),
        ("fallback_delay", "P99999999D"),
    ],
)
async def test_durations_that_could_overflow_are_refused_at_patch(
    client: httpx.AsyncClient, field: str, value: Any
) -> None:
    shop = await create_shop(client)
    url = f"/api/v1/shops/{shop.id}/settings"
    before = (await client.get(url, headers=shop.auth)).json()
    response = await client.patch(url, json={field: value}, headers=shop.auth)
    locs = [e["loc"][:2] for e in assert_validation_problem(response)]
    assert ["body", field] in locs, locs
    assert (await client.get(url, headers=shop.auth)).json() == before


async def largest_accepted_reminder_days(client: httpx.AsyncClient, url: str, auth: Any) -> int:
    """The largest `P{n}D` reminder PATCH accepts, found by bisection over the API."""

    async def accepted(days: int) -> bool:
        response = await client.patch(url, json={"reminders": [f"P{days}D"]}, headers=auth)
        assert response.status_code in (200, 422), response.text
        return response.status_code == 200

    low, high = 1, 99_999_999
    assert await accepted(low)
    assert not await accepted(high)
    while high - low > 1:
        middle = (low + high) // 2
        if await accepted(middle):
            low = middle
        else:
            high = middle
    assert await accepted(low)
    return low


async def test_largest_accepted_reminder_is_scheduled_and_the_first_email_leaves_once(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    shop = await create_shop(client)
    url = f"/api/v1/shops/{shop.id}/settings"
    days = await largest_accepted_reminder_days(client, url, shop.auth)
    assert (await client.get(url, headers=shop.auth)).json()["reminders"] == [f"P{days}D"]
    await post_event(client, shop, order_event(1, 1, 5))
    with sink(smtputf8=True) as (handler, port):
        worker = dispatcher(engine, settings, port)
        first = await worker.tick(now=at(LATER))
        # Past the 120 s lease: a first e-mail whose outcome had rolled back would go again.
        again = [
            (await worker.tick(now=at(LATER + delta))).sent
            for delta in (timedelta(minutes=5), timedelta(hours=1))
        ]
        at_sink = received(handler)
    assert (first.sent, again) == (1, [0, 0])
    [item] = await requests_of(client, shop)
    detail = (
        await client.get(f"/api/v1/shops/{shop.id}/review-requests/{item['id']}", headers=shop.auth)
    ).json()
    first_email, reminder = detail["deliveries"]
    assert (first_email["status"], first_email["attempts"]) == ("sent", 1)
    assert at_sink == Counter({first_email["message_id"]: 1})
    assert (reminder["kind"], reminder["status"]) == ("reminder", "scheduled")
    # Calendar days in the shop's zone: the same wall-clock time in Paris, `days` later.
    sent_in_paris = datetime.fromisoformat(first_email["sent_at"]).astimezone(PARIS)
    wall = sent_in_paris.replace(tzinfo=None) + timedelta(days=days)
    assert datetime.fromisoformat(reminder["due_at"]) == wall.replace(tzinfo=PARIS), days


async def wait_settled(
    engine: AsyncEngine, workers: list[Worker], timeout: float, planted: Planted
) -> None:
    """Until no delivery is scheduled or sending; a worker that exits fails the test."""
    deadline = time.monotonic() + timeout
    while True:
        for worker in workers:
            if worker.process.poll() is not None:
                pytest.fail(f"a worker exited with {worker.process.returncode}:\n{worker.tail()}")
        rows = await outcomes(engine)
        if all(o.status not in ("scheduled", "sending") for o in rows.values()):
            return
        if time.monotonic() > deadline:
            kind = {**dict.fromkeys(planted.innocents, "innocent"), **planted.poisons}
            summary = Counter((kind[d], o.status, o.attempts) for d, o in rows.items())
            pytest.fail(f"not settled after {timeout:.0f} s: {sorted(summary.items())}")
        await asyncio.sleep(0.25)


def stop(workers: list[Worker]) -> None:
    """SIGTERM: each worker finishes its tick and exits 0."""
    for worker in workers:
        worker.process.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            code = worker.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pytest.fail(f"a worker did not exit within 15 s of SIGTERM:\n{worker.tail()}")
        assert code == 0, worker.tail()


@pytest.mark.postgres_only
@pytest.mark.slow
@pytest.mark.parametrize("smtputf8", [True, False], ids=["smtputf8", "ascii_only"])
async def test_three_workers_send_every_innocent_once_among_poisons(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    database_url: str,
    start_workers: Any,  # noqa: F811
    smtputf8: bool,
) -> None:
    planted = await plant(client, engine, innocents=200, per_kind=3, base=datetime.now(UTC))
    with sink(smtputf8=smtputf8) as (handler, port):
        # A short lease: a poison left `sending` (the old jam) comes back within the test.
        env = worker_env(
            database_url,
            port,
            claim_lease="6",
            smtp_timeout="2",
            claim_batch="10",
            max_attempts=str(MAX_ATTEMPTS),
            retry_base="0.5",
        )
        workers = start_workers(env, 3)
        await wait_settled(engine, workers, 25, planted)
        await asyncio.sleep(1.0)  # a few more ticks: nothing else may leave
        assert [w.process.poll() for w in workers] == [None, None, None]
        stop(workers)
        at_sink = received(handler)
    check_run(
        planted, await outcomes(engine), at_sink, smtputf8=smtputf8, max_attempts=MAX_ATTEMPTS
    )
