"""Three `relance worker` processes on one PostgreSQL database, sending 2,000 due e-mails.

Each worker keeps `RELANCE_SMTP_CONCURRENCY` (10) SMTP conversations at once. The SMTP sink runs
in the test process. Without failures every e-mail leaves exactly once; when a worker is killed
with SIGKILL mid-run, its claims are taken over after their lease and only the messages that
were in its SMTP conversations at that instant (at most the concurrency) may leave twice.
"""

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.orders.models import Order
from app.requests.models import Delivery, ReviewRequest
from app.webhooks.schemas import OrderStatusChanged
from tests.factories import create_shop, order_event, post_event
from tests.smtp_sink import SinkHandler, free_port, smtp_sink

pytestmark = [pytest.mark.postgres_only, pytest.mark.slow]

COUNT = 2000
WORKERS = 3
CONCURRENCY = 10
SECRET_KEY = "test-secret-key"  # the `settings` fixture's key, so review links verify

# The `relance` console script of this environment, or its equivalent.
_SCRIPT = Path(sys.executable).parent / "relance"
RELANCE = (
    [str(_SCRIPT)]
    if _SCRIPT.exists()
    else [sys.executable, "-c", "from app.cli import main; main()"]
)


@dataclass
class SlowSinkHandler(SinkHandler):
    """Keeps each message as soon as its data has arrived, then takes `delay` to answer 250,
    like a server that has queued the message: a client killed meanwhile never learns it."""

    delay: float = 0.0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        await asyncio.sleep(self.delay)
        return reply


@contextmanager
def slow_sink(delay: float) -> Iterator[tuple[SlowSinkHandler, int]]:
    """Like `tests.smtp_sink.smtp_sink`, with the slow handler."""
    handler = SlowSinkHandler(delay=delay)
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self, size: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-size:] if self.log.exists() else ""


def worker_env(database_url: str, smtp_port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELANCE_")}
    values = {
        "database_url": database_url,
        "mail_url": f"smtp://127.0.0.1:{smtp_port}",
        "dispatch_interval": "0.2",
        "claim_batch": "20",
        "smtp_concurrency": str(CONCURRENCY),
        "secret_key": SECRET_KEY,
        "public_url": "https://reviews.example.test",
        **extra,
    }
    env.update({f"RELANCE_{k.upper()}": v for k, v in values.items()})
    return env


@pytest.fixture
def start_workers(tmp_path: Path) -> Iterator[Any]:
    """Starts `relance worker` processes; every one still running is killed at the end."""
    started: list[Worker] = []

    def start(env: dict[str, str], count: int) -> list[Worker]:
        workers = []
        for _ in range(count):
            log = tmp_path / f"worker{len(started)}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [*RELANCE, "worker"],
                    env=env,
                    cwd=tmp_path,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            worker = Worker(process, log)
            started.append(worker)
            workers.append(worker)
        return workers

    try:
        yield start
    finally:
        for worker in started:
            if worker.process.poll() is None:
                worker.process.kill()
        for worker in started:
            worker.process.wait(timeout=15)


async def due_via_webhooks(client: httpx.AsyncClient) -> tuple[str, float]:
    """2,000 Delivered orders (distinct customers) posted through the real inbox, delay 0."""
    shop = await create_shop(client, delay="PT0S")
    limit = asyncio.Semaphore(20)

    async def one(order_id: int) -> None:
        async with limit:
            response = await post_event(
                client, shop, order_event(order_id, 1, 5, email=f"c{order_id}@example.fr")
            )
            assert response.status_code == 202, response.text

    started = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(1, COUNT + 1))), timeout=300)
    return shop.id, time.monotonic() - started


async def due_via_sql(
    client: httpx.AsyncClient, engine: AsyncEngine, customers: int = COUNT
) -> tuple[str, float]:
    """The same rows the inbox writes (order, request, first delivery), inserted in bulk.

    COUNT orders of `customers` customers (see `email`)."""
    shop = await create_shop(client, delay="PT0S")
    started = time.monotonic()
    now = datetime.now(UTC)
    # Stored as the inbox stores them: the validated product list of the event.
    products = [
        p.model_dump(mode="json")
        for p in OrderStatusChanged.model_validate(order_event(1, 1, 5)).data.products
    ]
    async with engine.begin() as conn:
        await conn.execute(
            insert(Order),
            [
                {
                    "shop_id": shop.id,
                    "order_id": i,
                    "reference": f"REF{i}",
                    "customer_id": i,
                    "email": email(i, customers),
                    "email_normalized": email(i, customers),
                    "firstname": "Marie",
                    "lastname": "Dupont",
                    "language": "fr",
                    "currency": "EUR",
                    "total_paid": "59.90",
                    "ordered_at": now - timedelta(days=5),
                    "products": products,
                    "state_id": 5,
                    "state_name": "Delivered",
                    "history_id": 1,
                    "state_at": now,
                    "paid_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(1, COUNT + 1)
            ],
        )
        request_ids = (
            await conn.scalars(
                insert(ReviewRequest).returning(ReviewRequest.id),
                [
                    {
                        "shop_id": shop.id,
                        "order_id": i,
                        "email": email(i, customers),
                        "email_normalized": email(i, customers),
                        "language": "fr",
                        "status": "scheduled",
                        "source": "trigger",
                        "trigger_history_id": 1,
                        "trigger_at": now,
                        "due_at": now,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in range(1, COUNT + 1)
                ],
            )
        ).all()
        await conn.execute(
            insert(Delivery),
            [
                {
                    "request_id": request_id,
                    "shop_id": shop.id,
                    "kind": "first",
                    "seq": 0,
                    "status": "scheduled",
                    "due_at": now,
                    "attempts": 0,
                    "created_at": now,
                    "updated_at": now,
                }
                for request_id in request_ids
            ],
        )
    return shop.id, time.monotonic() - started


def email(order_id: int, customers: int) -> str:
    """Orders of one customer are adjacent, so they fall in the same claims."""
    return f"c{(order_id - 1) * customers // COUNT + 1}@example.fr"


async def statuses(engine: AsyncEngine, shop_id: str) -> tuple[dict[str, int], dict[str, int]]:
    """Counts of request statuses and of delivery statuses."""
    async with engine.connect() as conn:
        requests = {
            r[0]: r[1]
            for r in await conn.execute(
                select(ReviewRequest.status, func.count())
                .where(ReviewRequest.shop_id == shop_id)
                .group_by(ReviewRequest.status)
            )
        }
        deliveries = {
            r[0]: r[1]
            for r in await conn.execute(
                select(Delivery.status, func.count())
                .where(Delivery.shop_id == shop_id)
                .group_by(Delivery.status)
            )
        }
    return requests, deliveries


async def wait_until_all_sent(
    engine: AsyncEngine, shop_id: str, sink: SinkHandler, workers: list[Worker], timeout: float
) -> None:
    """Until the database has nothing scheduled or sending and the sink has every e-mail."""
    deadline = time.monotonic() + timeout
    while True:
        for worker in workers:
            if worker.process.poll() is not None:
                pytest.fail(f"a worker exited with {worker.process.returncode}:\n{worker.tail()}")
        _, deliveries = await statuses(engine, shop_id)
        pending = deliveries.get("scheduled", 0) + deliveries.get("sending", 0)
        with sink.lock:
            received = len(sink.messages)
        if pending == 0 and received >= COUNT:
            return
        if time.monotonic() > deadline:
            async with engine.connect() as conn:
                stuck = (
                    await conn.execute(
                        select(
                            Delivery.id, Delivery.status, Delivery.claimed_by,
                            Delivery.claim_expires_at, Delivery.attempts, Delivery.due_at,
                        )
                        .where(Delivery.shop_id == shop_id)
                        .where(Delivery.status.in_(["scheduled", "sending"]))
                        .limit(10)
                    )
                ).all()  # fmt: skip
            logs = "\n".join(w.tail(4000) for w in workers)
            pytest.fail(
                f"after {timeout:.0f} s: {received} messages at the sink, deliveries {deliveries}"
                f"; some left: {[tuple(r) for r in stuck]}; now {datetime.now(UTC)}\n{logs}"
            )
        await asyncio.sleep(0.25)


def stop_gracefully(workers: list[Worker]) -> None:
    """SIGTERM: each worker finishes its tick, gives back its claims and exits 0."""
    for worker in workers:
        worker.process.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            code = worker.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pytest.fail(f"a worker did not exit within 15 s of SIGTERM:\n{worker.tail()}")
        assert code == 0, worker.tail()
        assert "Traceback" not in worker.tail(100_000), worker.tail()


def message_ids(sink: SinkHandler) -> Counter[str]:
    with sink.lock:
        return Counter(str(m["Message-ID"]) for m in sink.messages)


async def test_three_workers_send_each_email_exactly_once(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    database_url: str,
    start_workers: Any,
    record_property: Any,
) -> None:
    shop_id, ingest = await due_via_webhooks(client)
    print(f"\n{COUNT} webhooks accepted through the ASGI client in {ingest:.1f} s")
    record_property("ingest_seconds", round(ingest, 1))
    requests, deliveries = await statuses(engine, shop_id)
    assert (requests, deliveries) == ({"scheduled": COUNT}, {"scheduled": COUNT})

    with smtp_sink() as (sink, port):
        workers = start_workers(worker_env(database_url, port), WORKERS)
        started = time.monotonic()
        await wait_until_all_sent(engine, shop_id, sink, workers, timeout=240)
        elapsed = time.monotonic() - started
        await asyncio.sleep(1.0)  # a few more ticks: nothing else may leave
        stop_gracefully(workers)
        ids = message_ids(sink)
        recipients = Counter(rcpt for _, rcpts in sink.envelopes for rcpt in rcpts)
        count = len(sink.messages)

    print(f"{count} messages sent by {WORKERS} workers in {elapsed:.1f} s")
    record_property("dispatch_seconds", round(elapsed, 1))
    assert count == COUNT
    assert len(ids) == COUNT, [i for i, n in ids.items() if n > 1][:5]
    assert len(recipients) == COUNT and set(recipients.values()) == {1}
    assert set(recipients) == {f"c{i}@example.fr" for i in range(1, COUNT + 1)}
    requests, deliveries = await statuses(engine, shop_id)
    assert (requests, deliveries) == ({"sent": COUNT}, {"sent": COUNT})
    async with engine.connect() as conn:
        stored = set(
            await conn.scalars(select(Delivery.message_id).where(Delivery.shop_id == shop_id))
        )
        attempts = set(
            await conn.scalars(select(Delivery.attempts).where(Delivery.shop_id == shop_id))
        )
    assert stored == set(ids)
    assert attempts == {1}


async def held_by(engine: AsyncEngine, shop_id: str, pid: int) -> dict[int, str]:
    """Deliveries (id → Message-ID) whose committed claim belongs to the process `pid`."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(Delivery.id, Delivery.claimed_by, Delivery.message_id).where(
                Delivery.shop_id == shop_id, Delivery.status == "sending"
            )
        )
        # A worker's name is "host:pid:random".
        return {r.id: r.message_id for r in rows if r.claimed_by.split(":")[-2] == str(pid)}


async def test_a_killed_worker_loses_nothing_and_resends_at_most_its_in_flight(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    database_url: str,
    start_workers: Any,
    record_property: Any,
) -> None:
    shop_id, ingest = await due_via_sql(client, engine)
    print(f"\n{COUNT} due requests inserted in {ingest:.1f} s")

    with slow_sink(delay=0.02) as (sink, port):
        env = worker_env(database_url, port, claim_lease="6", smtp_timeout="2")
        workers = start_workers(env, WORKERS)
        victim = workers[0]
        started = time.monotonic()

        # Wait for ~300 messages, then kill one worker while it holds claims: stop it first,
        # look at what it holds (committed claims only), kill it if it holds any.
        deadline = time.monotonic() + 120
        held: dict[int, str] = {}
        at_stop: dict[int, str] = {}
        while not held:
            if time.monotonic() > deadline:
                pytest.fail(
                    f"no kill after 120 s ({len(sink.messages)} messages):\n{victim.tail()}"
                )
            if len(sink.messages) < 300 or victim.process.poll() is not None:
                assert victim.process.poll() is None, victim.tail()
                await asyncio.sleep(0.05)
                continue
            victim.process.send_signal(signal.SIGSTOP)
            at_stop = await held_by(engine, shop_id, victim.process.pid)
            # A COMMIT the worker sent just before it stopped is still carried out by its
            # server process: let it land, or "held" would list e-mails already recorded.
            await asyncio.sleep(0.5)
            held = await held_by(engine, shop_id, victim.process.pid)
            if held:
                victim.process.kill()
                victim.process.wait(timeout=15)
            else:
                victim.process.send_signal(signal.SIGCONT)
                await asyncio.sleep(0.02)
        at_kill = len(sink.messages)
        print(f"killed worker {victim.process.pid} at {at_kill} messages, holding {len(held)}")
        assert at_kill < COUNT - 100, "the kill must happen while most e-mails are still due"

        survivors = workers[1:]
        await wait_until_all_sent(engine, shop_id, sink, survivors, timeout=240)
        elapsed = time.monotonic() - started
        await asyncio.sleep(1.0)
        stop_gracefully(survivors)
        ids = message_ids(sink)
        recipients = {rcpt for _, rcpts in sink.envelopes for rcpt in rcpts}
        count = len(sink.messages)

    duplicates = sum(n - 1 for n in ids.values() if n > 1)
    print(f"{count} messages in {elapsed:.1f} s; duplicates after kill -9: {duplicates}")
    record_property("duplicates", duplicates)
    record_property("messages_at_kill", at_kill)
    record_property("claims_held_at_kill", len(held))

    # Nothing lost: every request sent, every order's e-mail at the sink.
    requests, deliveries = await statuses(engine, shop_id)
    assert (requests, deliveries) == ({"sent": COUNT}, {"sent": COUNT})
    assert recipients == {f"c{i}@example.fr" for i in range(1, COUNT + 1)}
    async with engine.connect() as conn:
        stored = {
            r.id: (r.message_id, r.attempts)
            for r in await conn.execute(
                select(Delivery.id, Delivery.message_id, Delivery.attempts).where(
                    Delivery.shop_id == shop_id
                )
            )
        }
    assert {m for m, _ in stored.values()} == set(ids)
    # The victim's claims were taken over after their lease (a second attempt each).
    assert all(stored[d][1] >= 2 for d in held), {d: stored[d] for d in held}
    # Only the messages in the victim's SMTP conversations at the kill may have left twice.
    assert duplicates <= CONCURRENCY, [i for i, n in ids.items() if n > 1]
    # (Those it held when it stopped: a lease that ran out in the half second before the
    # second look was taken over, and is no longer the victim's in `held`.)
    assert {i for i, n in ids.items() if n > 1} <= {*held.values(), *at_stop.values()}
    assert count == COUNT + duplicates


async def told_twice(engine: AsyncEngine, sink: SinkHandler, addresses: list[str]) -> str:
    """What to look at when a customer got more than one e-mail: the Message-IDs the sink got,
    and the rows of that customer's e-mails."""
    with sink.lock:
        got = [(str(m["To"]), str(m["Message-ID"])) for m in sink.messages]
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(
                ReviewRequest.email, Delivery.id, Delivery.status, Delivery.reason,
                Delivery.attempts, Delivery.message_id, Delivery.claimed_at, Delivery.sent_at,
                Delivery.last_error,
            )
            .join(ReviewRequest, ReviewRequest.id == Delivery.request_id)
            .where(ReviewRequest.email.in_(addresses[:3]))
            .order_by(Delivery.id)
        )  # fmt: skip
        lines = [str(tuple(r)) for r in rows]
    sent = [g for g in got if g[0] in addresses[:3]]
    return f"{len(addresses)} customers told more than once; sink: {sent}; rows: {lines}"


@pytest.mark.xfail(
    strict=False,
    reason="open defect, seen in 2 of 7 CI runs under load: a customer got more than one "
    "e-mail (reported as one claim taking three first e-mails of one customer, same "
    "claimed_at). The claim's interleavings are tested one by one in test_cooldown_race.py and "
    "hold; the cause is not found yet. The failure message holds the rows to investigate",
)
async def test_three_workers_keep_the_cooldown_for_orders_due_together(
    client: httpx.AsyncClient, engine: AsyncEngine, database_url: str, start_workers: Any
) -> None:
    """Each customer has four orders due at once: one e-mail each, the others wait for it to
    be recorded and are skipped by the cool-down, across three workers of 10 conversations."""
    customers = COUNT // 4
    shop_id, _ = await due_via_sql(client, engine, customers=customers)
    with slow_sink(delay=0.02) as (sink, port):
        workers = start_workers(worker_env(database_url, port), WORKERS)
        deadline = time.monotonic() + 240
        while True:
            _, deliveries = await statuses(engine, shop_id)
            if deliveries.get("scheduled", 0) + deliveries.get("sending", 0) == 0:
                break
            assert time.monotonic() < deadline, deliveries
            assert all(w.process.poll() is None for w in workers), workers[0].tail()
            await asyncio.sleep(0.25)
        await asyncio.sleep(1.0)
        stop_gracefully(workers)
        recipients = Counter(rcpt for _, rcpts in sink.envelopes for rcpt in rcpts)
    twice = [r for r, n in recipients.items() if n > 1]
    logs = "\n".join(w.tail(3000) for w in workers)
    assert not twice, f"{await told_twice(engine, sink, twice)}\n{logs}"
    assert recipients == {f"c{k}@example.fr": 1 for k in range(1, customers + 1)}
    async with engine.connect() as conn:
        outcomes = Counter(
            (r.status, r.reason)
            for r in await conn.execute(
                select(Delivery.status, Delivery.reason).where(Delivery.shop_id == shop_id)
            )
        )
    assert outcomes == {
        ("sent", None): customers,
        ("skipped", "customer_cooldown"): COUNT - customers,
    }
