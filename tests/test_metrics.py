"""`/metrics`: the text format, counters, scrape-time gauges, the token, a dead database."""

import signal
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from app import counters
from app.config import Settings
from app.db import utcnow
from app.requests.models import Delivery
from app.shops.models import Shop
from tests.factories import ClientFor, create_shop, order_event, post_event, signed
from tests.problems import assert_problem
from tests.smtp_sink import free_port
from tests.test_end_to_end import RELANCE, relance_env, run_migrate, stop, tail, wait_for

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
WEBHOOK = "/webhooks/prestashop/{shop_id}"


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples named `name` whose labels include `labels` (0 when none)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def has(samples: Samples, name: str) -> bool:
    return any(n == name for n, _ in samples)


async def scrape(client: httpx.AsyncClient, **headers: str) -> Samples:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


async def test_webhooks_counted_by_outcome_and_code_and_latency_by_route_template(
    client: httpx.AsyncClient,
) -> None:
    before = await scrape(client)
    shop = await create_shop(client)
    accepted = await post_event(client, shop, order_event(1, 1, 5))
    pong = await post_event(client, shop, {"type": "ping", "data": {}})
    body, headers = signed("whsec_" + "A" * 43, order_event(2, 1, 5))
    rejected = await client.post(f"/webhooks/prestashop/{shop.id}", content=body, headers=headers)
    unknown = await client.get("/no/such/path/12345")
    assert (accepted.status_code, pong.status_code, rejected.status_code) == (202, 200, 401)
    assert unknown.status_code == 404

    after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("relance_webhooks_total", outcome="accepted", code="202") == 1
    assert delta("relance_webhooks_total", outcome="pong", code="200") == 1
    assert delta("relance_webhooks_total", outcome="rejected", code="401") == 1
    latency = "relance_http_request_duration_seconds_count"
    assert delta(latency, method="POST", route=WEBHOOK) == 3
    assert delta(latency, method="GET", route=counters.UNMATCHED) == 1
    assert delta("relance_http_requests_total", method="POST", route=WEBHOOK, code="401") == 1
    # Bounded cardinality: no label carries a raw path.
    routes = {dict(ls).get("route") for (_, ls) in after}
    assert not any(r and (shop.id in r or "12345" in r) for r in routes)


async def test_due_overdue_lag_and_sending_gauges_follow_the_rows(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    shop = await create_shop(client)
    assert (await post_event(client, shop, order_event(1, 1, 5))).status_code == 202
    fresh = await scrape(client)
    assert value(fresh, "relance_database_up") == 1
    # The default delay is two days: scheduled, not yet due.
    assert value(fresh, "relance_deliveries_due") == 0
    assert value(fresh, "relance_dispatcher_lag_seconds") == 0

    async with engine.begin() as conn:
        await conn.execute(
            update(Delivery)
            .where(Delivery.shop_id == shop.id)
            .values(due_at=utcnow() - timedelta(minutes=10))
        )
    late = await scrape(client)
    assert value(late, "relance_deliveries_due") == 1
    assert value(late, "relance_deliveries_overdue") == 1
    assert 600 <= value(late, "relance_dispatcher_lag_seconds") < 660

    async with engine.begin() as conn:
        await conn.execute(
            update(Shop).where(Shop.id == shop.id).values(sending_paused_at=utcnow())
        )
    paused = await scrape(client)
    # Still due, but a paused shop's e-mails are not the dispatcher's lag.
    assert value(paused, "relance_deliveries_due") == 1
    assert value(paused, "relance_dispatcher_lag_seconds") == 0
    assert value(paused, "relance_shops_sending_paused") == 1

    async with engine.begin() as conn:
        await conn.execute(
            update(Delivery)
            .where(Delivery.shop_id == shop.id)
            .values(status="sending", claim_expires_at=utcnow() - timedelta(seconds=1))
        )
    claimed = await scrape(client)
    assert value(claimed, "relance_deliveries_due") == 0
    assert value(claimed, "relance_deliveries_sending") == 1
    assert value(claimed, "relance_deliveries_lease_expired") == 1


async def test_pool_gauges_describe_the_engine(
    client: httpx.AsyncClient, app: Any, settings: Settings
) -> None:
    samples = await scrape(client)
    # PostgreSQL: the configured size, as many again in overflow; SQLite: SQLAlchemy's default.
    size = 5 if settings.database_url.startswith("sqlite") else settings.db_pool_size
    overflow = 10 if settings.database_url.startswith("sqlite") else settings.db_pool_size
    assert value(samples, "relance_db_pool_size") == app.state.engine.pool.size() == size
    assert value(samples, "relance_db_pool_max") == size + overflow
    # The scrape gave its own connection back before rendering.
    assert value(samples, "relance_db_pool_checked_out") == 0


async def test_dispatcher_counters_show(client: httpx.AsyncClient) -> None:
    before = await scrape(client)
    counters.delivery_finished("sent", None)
    counters.delivery_finished("failed", "recipient_rejected")
    counters.smtp_error("transient")
    after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("relance_deliveries_total", status="sent", reason="") == 1
    assert delta("relance_deliveries_total", status="failed", reason="recipient_rejected") == 1
    assert delta("relance_smtp_errors_total", kind="transient") == 1


async def test_token_guards_metrics_when_set(settings: Settings, client_for: ClientFor) -> None:
    client = await client_for(settings.model_copy(update={"metrics_token": "scrape-token"}))
    missing = await client.get("/metrics")
    wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
    right = await client.get("/metrics", headers={"Authorization": "Bearer scrape-token"})
    for refused in (missing, wrong):
        assert_problem(refused, 401)
    assert right.status_code == 200
    assert has(parse(right.text), "relance_database_up")


async def test_metrics_open_when_no_token_and_absent_from_openapi(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/metrics")).status_code == 200
    assert "/metrics" not in (await client.get("/openapi.json")).json()["paths"]


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://postgres@127.0.0.1:1/none",
        "sqlite+aiosqlite:////nonexistent-relance-dir/relance.db",
    ],
    ids=["postgresql", "sqlite"],
)
async def test_unreachable_database_still_answers_with_database_down(
    url: str, client_for: ClientFor
) -> None:
    broken = Settings(
        database_url=url,
        scheduler="off",
        secret_key="test-secret-key",
        _env_file=None,
    )
    samples = await scrape(await client_for(broken))
    assert value(samples, "relance_database_up") == 0
    assert not has(samples, "relance_deliveries_due")
    assert has(samples, "relance_http_request_duration_seconds_count")


@pytest.fixture
def two_servers(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """Two `relance serve` processes sharing one PROMETHEUS_MULTIPROC_DIR."""
    shared = tmp_path / "prometheus"
    shared.mkdir()
    env = relance_env(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'relance.db'}",
        scheduler="off",
        secret_key="test-secret-key",
    )
    env["PROMETHEUS_MULTIPROC_DIR"] = str(shared)
    run_migrate(env, tmp_path)
    processes: list[tuple[subprocess.Popen[bytes], str, Path]] = []
    try:
        for name in ("a", "b"):
            port = free_port()
            log = tmp_path / f"serve-{name}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [*RELANCE, "serve", "--host", "127.0.0.1", "--port", str(port)],
                    env=env,
                    cwd=tmp_path,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            processes.append((process, f"http://127.0.0.1:{port}", log))
        for process, base, log in processes:

            def healthy(process: Any = process, base: str = base, log: Path = log) -> bool:
                if process.poll() is not None:
                    pytest.fail(f"relance serve exited with {process.returncode}:\n{tail(log)}")
                try:
                    return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
                except httpx.TransportError:
                    return False

            wait_for(healthy, "relance serve to answer /readyz", timeout=60)
        yield processes[0][1], processes[1][1], shared
    finally:
        for process, _, _ in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process, _, _ in processes:
            try:
                process.wait(timeout=15)
            finally:
                stop(process)


@pytest.mark.slow
def test_multiprocess_dir_aggregates_every_process(two_servers: tuple[str, str, Path]) -> None:
    first, second, shared = two_servers
    for _ in range(2):
        assert httpx.get(f"{first}/healthz", timeout=5).status_code == 200
    for _ in range(3):
        assert httpx.get(f"{second}/healthz", timeout=5).status_code == 200
    response = httpx.get(f"{first}/metrics", timeout=10)
    assert response.status_code == 200
    samples = parse(response.text)
    count = "relance_http_request_duration_seconds_count"
    assert value(samples, count, method="GET", route="/healthz") == 5
    assert value(samples, "relance_database_up") == 1
    assert any(p.suffix == ".db" for p in shared.iterdir())
