"""PostgreSQL cut or stalled under load, through a TCP proxy of the test's own (tests.tcp_proxy).

Real `relance serve` and `relance worker` processes reach the database only through the proxy,
with small database timeouts; the test reads the real database directly (the `engine` fixture).
While the database is away, webhooks must get prompt 503s (never a 500, never a 2xx that was not
committed); once it is back, the service recovers without a restart, and the dispatcher records
the outcome of the message that was in its SMTP conversation instead of sending it twice.
"""

import asyncio
import email
import email.policy
import itertools
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from app.requests.models import Delivery, ReviewRequest
from app.webhooks.models import WebhookEvent
from tests.dispatch.test_multiprocess import SlowSinkHandler
from tests.factories import ADMIN, ShopInfo, create_shop, order_event, post_event, signed
from tests.problems import PROBLEM_JSON, RETRY_AFTER, assert_problem
from tests.smtp_sink import free_port
from tests.tcp_proxy import TcpProxy
from tests.test_end_to_end import RELANCE, Server, relance_env, serve, stop, tail

pytestmark = [pytest.mark.postgres_only, pytest.mark.slow]

# What the processes are given (RELANCE_DB_*), and what is expected of them.
CONNECT_TIMEOUT = 1.0
COMMAND_TIMEOUT = 2.0
POOL_TIMEOUT = 1.0
MARGIN = 2.0  # two shared cores and several people testing at once: generous margins
CUT_ANSWER = CONNECT_TIMEOUT + MARGIN  # a refused database is noticed at once
STALL_ANSWER = COMMAND_TIMEOUT + POOL_TIMEOUT + MARGIN  # a hung one after the timeouts
READYZ_ANSWER = 3.5  # /readyz has its own ~2 s budget
RECOVERY = 5.0  # after the link is back, 202 again within this
CLIENT_TIMEOUT = 30.0  # the HTTP client's own: well above every bound, to see hangs as such

SECRET_KEY = "test-secret-key"  # the `settings` fixture's key
ADMIN_TOKEN = ADMIN["Authorization"].removeprefix("Bearer ")


def through(database_url: str, proxy: TcpProxy) -> str:
    """The same database URL, reached through the proxy."""
    url = make_url(database_url).set(host="127.0.0.1", port=proxy.port)
    return url.render_as_string(hide_password=False)


def outage_env(**values: str) -> dict[str, str]:
    return relance_env(
        db_connect_timeout=str(CONNECT_TIMEOUT),
        db_command_timeout=str(COMMAND_TIMEOUT),
        db_pool_timeout=str(POOL_TIMEOUT),
        secret_key=SECRET_KEY,
        public_url="https://reviews.example.test",
        **values,
    )


@pytest.fixture
def proxy(database_url: str) -> Iterator[TcpProxy]:
    url = make_url(database_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as running:
        yield running


@pytest.fixture
def server(
    database_url: str, engine: AsyncEngine, proxy: TcpProxy, tmp_path: Path
) -> Iterator[Server]:
    """`relance serve` (no scheduler) whose database is behind the proxy; killed at the end."""
    env = outage_env(
        database_url=through(database_url, proxy),
        admin_token=ADMIN_TOKEN,
        scheduler="off",
        mail_url=f"file:{tmp_path / 'outbox'}",
    )
    port = free_port()
    with serve(env, tmp_path, port) as (process, log):
        yield Server(process, f"http://127.0.0.1:{port}", log, ADMIN_TOKEN)


@dataclass
class Answer:
    """One webhook as the client saw it (monotonic times)."""

    webhook_id: str
    sent: float
    answered: float
    status: int | None  # None: no HTTP answer (connection error, client timeout)
    retry_after: str | None = None
    content_type: str = ""
    text: str = ""

    @property
    def took(self) -> float:
        return self.answered - self.sent

    def __str__(self) -> str:
        return f"{self.status} after {self.took:.1f} s: {self.text[:160]}"


async def send_load(
    client: httpx.AsyncClient, shop: ShopInfo, until: float, clients: int = 4
) -> list[Answer]:
    """`clients` senders, each posting a new Delivered order every ~0.1 s until `until`."""
    answers: list[Answer] = []
    order_ids = itertools.count(1)

    async def sender() -> None:
        while time.monotonic() < until:
            order_id = next(order_ids)
            payload = order_event(order_id, 1, 5, email=f"c{order_id}@example.fr")
            body, headers = signed(shop.webhook_secret, payload)
            sent = time.monotonic()
            try:
                response = await client.post(
                    f"/webhooks/prestashop/{shop.id}", content=body, headers=headers
                )
            except httpx.HTTPError as exc:
                answers.append(
                    Answer(headers["webhook-id"], sent, time.monotonic(), None, text=repr(exc))
                )
            else:
                answers.append(
                    Answer(
                        headers["webhook-id"],
                        sent,
                        time.monotonic(),
                        response.status_code,
                        response.headers.get("retry-after"),
                        response.headers.get("content-type", ""),
                        response.text,
                    )
                )
            await asyncio.sleep(0.1)

    await asyncio.gather(*(sender() for _ in range(clients)))
    return answers


def timeline(answers: list[Answer], began: float) -> list[str]:
    """The answers from the outage on, for failure messages: sent at (from its start), took."""
    near = sorted((a for a in answers if a.answered >= began), key=lambda a: a.sent)
    return [f"{a.sent - began:+.1f}s {a.status} in {a.took:.1f}s" for a in near[:12]]


async def stored_webhook_ids(engine: AsyncEngine, shop_id: str) -> set[str]:
    """What the inbox committed, read from the real database (not through the proxy)."""
    async with engine.connect() as conn:
        rows = await conn.scalars(
            select(WebhookEvent.webhook_id).where(WebhookEvent.shop_id == shop_id)
        )
        return set(rows)


async def wait_ready(client: httpx.AsyncClient, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if (await client.get("/readyz", timeout=3)).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"/readyz not 200 within {timeout:.0f} s of the link coming back")
        await asyncio.sleep(0.2)


async def run_outage(
    server: Server,
    engine: AsyncEngine,
    break_link: Callable[[], None],
    restore_link: Callable[[], None],
    outage: float,
    during: Callable[[httpx.AsyncClient], Coroutine[Any, Any, None]] | None = None,
) -> tuple[list[Answer], float, float]:
    """Load for 3 s, `break_link` for `outage` s, restore, 7 s more. Returns the answers and
    when the outage began (after `break_link` returned) and ended (before `restore_link`)."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=CLIENT_TIMEOUT) as client:
        shop = await create_shop(client)
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        began_load = time.monotonic()
        load = asyncio.create_task(send_load(client, shop, until=began_load + 3 + outage + 7))
        await asyncio.sleep(3)
        await asyncio.to_thread(break_link)
        began = time.monotonic()
        probe = asyncio.create_task(during(client)) if during is not None else None
        await asyncio.sleep(outage)
        ended = time.monotonic()
        await asyncio.to_thread(restore_link)
        answers = await load
        if probe is not None:
            await probe
        await wait_ready(client, RECOVERY)

    # Never a 500, never a hang: 202 (committed) or 503 (nothing recorded, retry later).
    odd = [str(a) for a in answers if a.status not in (202, 503)]
    assert not odd, odd[:5]
    for a in answers:
        if a.status == 503:
            assert a.content_type == PROBLEM_JSON, str(a)
            assert a.retry_after == RETRY_AFTER, str(a)
    # No acknowledged webhook lost.
    accepted = {a.webhook_id for a in answers if a.status == 202}
    missing = accepted - await stored_webhook_ids(engine, shop.id)
    assert not missing, f"{len(missing)} webhooks answered 202 are not in the database"
    assert any(a.status == 202 and a.answered < began for a in answers), "no 202 before"
    # No 2xx for a request sent and answered while the database could not be reached.
    blind = [a for a in answers if a.sent >= began and a.answered <= ended]
    assert blind, f"no request was answered during the outage: {timeline(answers, began)}"
    assert all(a.status == 503 for a in blind), [str(a) for a in blind if a.status != 503][:5]
    # Recovery without a restart: 202 again within a few seconds, and from then on only 202.
    after = [a for a in answers if a.sent >= ended]
    first_ok = min((a.answered for a in after if a.status == 202), default=None)
    assert first_ok is not None and first_ok - ended <= RECOVERY, [str(a) for a in after[:5]]
    late = [a for a in answers if a.sent >= ended + RECOVERY]
    assert late, "the load stopped too early to see the recovery"
    assert all(a.status == 202 for a in late), [str(a) for a in late if a.status != 202][:5]
    return answers, began, ended


async def test_database_cut_under_load_answers_prompt_503s_and_recovers(
    server: Server, engine: AsyncEngine, proxy: TcpProxy
) -> None:
    answers, began, ended = await run_outage(server, engine, proxy.cut, proxy.restore, 4.0)
    # Every answer prompt, the 503s of the cut included (the link is refused, not hung).
    slow = [str(a) for a in answers if a.took > CUT_ANSWER]
    assert not slow, slow[:5]
    assert sum(a.status == 503 for a in answers if began <= a.sent <= ended) >= 4


async def test_database_stall_under_load_answers_prompt_503s_and_recovers(
    server: Server, engine: AsyncEngine, proxy: TcpProxy
) -> None:
    readyz: list[httpx.Response | Exception] = []

    async def probe(client: httpx.AsyncClient) -> None:
        await asyncio.sleep(1.0)
        try:  # the bound is the client's timeout: no answer in time is a failure
            readyz.append(await client.get("/readyz", timeout=READYZ_ANSWER))
        except httpx.HTTPError as exc:
            readyz.append(exc)

    # Long enough that requests sent after the first ones gave up (which may take up to
    # STALL_ANSWER) are still answered inside the stall.
    answers, began, ended = await run_outage(
        server, engine, proxy.stall, proxy.restore, 2 * STALL_ANSWER + 2, during=probe
    )
    # A hung database is given up on after the command / pool timeouts, not waited out.
    slow = [str(a) for a in answers if a.took > STALL_ANSWER]
    assert not slow, slow[:5]
    # Requests sent early enough in the stall to be answered before it ended: prompt 503s.
    early = [a for a in answers if began <= a.sent <= ended - STALL_ANSWER]
    assert early, "no request was sent early in the stall"
    assert all(a.status == 503 for a in early), [str(a) for a in early]
    [ready] = readyz
    assert isinstance(ready, httpx.Response), f"/readyz, database stalled: {ready!r}"
    # The contract: every 4xx/5xx of /readyz is problem+json.
    assert_problem(ready, 503)


# --- The dispatcher through a cut --------------------------------------------------------------

COUNT = 40
LEASE = 15.0
SMTP_TIMEOUT = 5.0
CUT_AT_MESSAGE = 5
OUTAGE = 3.0


@dataclass
class CuttingSink(SlowSinkHandler):
    """Keeps each message, then cuts the database link while the `cut_at`-th message is still
    unanswered: the worker learns it was accepted only after its database has gone."""

    cut_at: int = 0
    cut: Callable[[], None] = lambda: None
    has_cut: threading.Event = field(default_factory=threading.Event)
    arrivals: list[tuple[str, datetime]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.arrivals.append((str(parsed["Message-ID"]), datetime.now(UTC)))
            if len(self.arrivals) == self.cut_at:
                self.cut()
                self.has_cut.set()
        return await super().handle_DATA(server, session, envelope)


async def statuses(engine: AsyncEngine, shop_id: str) -> tuple[dict[str, int], dict[str, int]]:
    async with engine.connect() as conn:
        requests = await conn.execute(
            select(ReviewRequest.status, func.count())
            .where(ReviewRequest.shop_id == shop_id)
            .group_by(ReviewRequest.status)
        )
        deliveries = await conn.execute(
            select(Delivery.status, func.count())
            .where(Delivery.shop_id == shop_id)
            .group_by(Delivery.status)
        )
        return {s: n for s, n in requests}, {s: n for s, n in deliveries}


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.2)


async def test_database_cut_while_sending_records_the_message_in_flight_once(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    database_url: str,
    proxy: TcpProxy,
    tmp_path: Path,
) -> None:
    shop = await create_shop(client, delay="PT0S")
    for i in range(1, COUNT + 1):
        posted = await post_event(client, shop, order_event(i, 1, 5, email=f"c{i}@example.fr"))
        assert posted.status_code == 202, posted.text

    sink = CuttingSink(delay=0.1, cut_at=CUT_AT_MESSAGE, cut=proxy.cut)
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    env = outage_env(
        database_url=through(database_url, proxy),
        mail_url=f"smtp://127.0.0.1:{controller.port}",
        scheduler="on",
        dispatch_interval="0.5",
        claim_lease=str(LEASE),
        smtp_timeout=str(SMTP_TIMEOUT),
        claim_batch="20",
    )
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [*RELANCE, "worker"], env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT
        )

    async def alive() -> None:
        if worker.poll() is not None:
            pytest.fail(f"relance worker exited with {worker.returncode}:\n{tail(log)}")

    async def has_cut() -> bool:
        await alive()
        return sink.has_cut.is_set()

    async def all_sent() -> bool:
        await alive()
        _, deliveries = await statuses(engine, shop.id)
        return deliveries == {"sent": COUNT} and len(sink.arrivals) >= COUNT

    try:
        await until(has_cut, f"the sink to receive {CUT_AT_MESSAGE} messages", timeout=60)
        # What the worker held when its database went away (committed claims, read directly).
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(Delivery.message_id, Delivery.claim_expires_at).where(
                    Delivery.shop_id == shop.id, Delivery.status == "sending"
                )
            )
            held: dict[str, datetime] = {}
            for message_id, expires in rows:
                assert message_id is not None and expires is not None
                held[message_id] = expires
        await asyncio.sleep(OUTAGE)
        await asyncio.to_thread(proxy.restore)
        restored = datetime.now(UTC)
        await until(all_sent, "every e-mail to be sent and recorded", timeout=LEASE + 45)
        await asyncio.sleep(1.0)  # two more ticks: nothing else may leave
    finally:
        stop(worker)
        controller.stop()

    in_flight = sink.arrivals[CUT_AT_MESSAGE - 1][0]
    assert in_flight in held, "the message in the SMTP conversation at the cut was not claimed"
    ids = Counter(m for m, _ in sink.arrivals)
    duplicates = sorted(m for m, n in ids.items() if n > 1)
    assert not duplicates, f"sent twice: {duplicates} (in flight at the cut: {in_flight})"
    assert len(sink.arrivals) == COUNT
    assert await statuses(engine, shop.id) == ({"sent": COUNT}, {"sent": COUNT})
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(Delivery.message_id, Delivery.attempts).where(Delivery.shop_id == shop.id)
        )
        stored = {m: attempts for m, attempts in rows}
    assert set(stored) == set(ids)
    # No claim was taken over after its lease: each e-mail cost exactly one attempt.
    assert set(stored.values()) == {1}, {m: n for m, n in stored.items() if n != 1}
    # The rest of the batch was released or resumed once the database answered, not left
    # waiting for its lease: each e-mail claimed at the cut left before that claim expired.
    arrived = dict(sink.arrivals)
    late = {m: (arrived[m], expires) for m, expires in held.items() if arrived[m] >= expires}
    assert not late, f"sent only after their lease (restored at {restored}): {late}"
    last = max(at for _, at in sink.arrivals)
    assert (last - restored).total_seconds() < LEASE, f"finished {last - restored} after restore"
