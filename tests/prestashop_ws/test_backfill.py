"""Backfill: a period's orders imported through the inbox, by the API and the CLI."""

import json
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.orders.models import Order
from app.webhooks.models import WebhookEvent
from tests.factories import signed
from tests.prestashop_ws.conftest import connected_shop
from tests.prestashop_ws.standin import Shop
from tests.problems import assert_problem

PARIS = ZoneInfo("Europe/Paris")


def local(days_ago: float) -> str:
    return (datetime.now(PARIS) - timedelta(days=days_ago)).strftime("%Y-%m-%d %H:%M:%S")


def three_orders(ps: Shop) -> None:
    """Delivered two days ago, cancelled, and awaiting payment."""
    ps.customer(7, "marie@example.fr")
    ps.customer(8, "paul@example.fr")
    ps.order(101, 7, [(1, 2, local(5)), (2, 4, local(4)), (3, 5, local(2))], local(2))
    ps.order(102, 8, [(4, 10, local(3)), (5, 6, local(1))], local(1))
    ps.order(103, 8, [(6, 10, local(1))], local(1))


async def backfill(api: httpx.AsyncClient, shop_id: str, auth: dict[str, str], **body: Any) -> Any:
    response = await api.post(f"/api/v1/shops/{shop_id}/backfill", json=body, headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


async def count(engine: AsyncEngine, table: Any) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)


async def test_backfill_schedules_through_the_inbox(
    api: httpx.AsyncClient, ps: Shop, engine: AsyncEngine
) -> None:
    three_orders(ps)
    shop = await connected_shop(api)
    report = await backfill(api, shop.id, shop.auth, since="P30D")
    assert report["orders"] == 3
    assert report["outcomes"] == {"recorded": 2, "scheduled": 1}
    requests = await api.get(f"/api/v1/shops/{shop.id}/review-requests", headers=shop.auth)
    [request] = requests.json()["items"]
    assert (request["order_id"], request["email"], request["status"]) == (
        101, "marie@example.fr", "scheduled",
    )  # fmt: skip
    events = (await api.get(f"/api/v1/shops/{shop.id}/events", headers=shop.auth)).json()
    assert {e["webhook_id"] for e in events["items"]} == {
        "reconcile:101:3", "reconcile:102:5", "reconcile:103:6",
    }  # fmt: skip
    # Paged: three history rows and customers fetched per page, never per order; no passwords.
    customer_calls = [p for r, p in ps.calls if r == "customers"]
    assert customer_calls and all(p["display"] != "full" for p in customer_calls)

    again = await backfill(api, shop.id, shop.auth, since="P30D")
    assert again["outcomes"] == {"up_to_date": 3}


async def test_dry_run_reports_and_changes_nothing(
    api: httpx.AsyncClient, ps: Shop, engine: AsyncEngine
) -> None:
    three_orders(ps)
    shop = await connected_shop(api)
    dry = await backfill(api, shop.id, shop.auth, since="P30D", dry_run=True)
    assert dry["dry_run"] is True
    assert dry["outcomes"] == {"recorded": 2, "scheduled": 1}
    assert await count(engine, WebhookEvent) == 0
    assert await count(engine, Order) == 0
    real = await backfill(api, shop.id, shop.auth, since="P30D")
    assert real["outcomes"] == dry["outcomes"]


async def test_the_period_bounds_the_import(api: httpx.AsyncClient, ps: Shop) -> None:
    three_orders(ps)
    ps.customer(9, "old@example.fr")
    ps.order(99, 9, [(9, 5, local(60))], local(60))
    shop = await connected_shop(api)
    report = await backfill(api, shop.id, shop.auth, since="P30D")
    assert report["orders"] == 3
    refused = await api.post(
        f"/api/v1/shops/{shop.id}/backfill", json={"since": "P400D"}, headers=shop.auth
    )
    assert_problem(refused, 422)
    assert refused.json()["errors"][0]["loc"] == ["body", "since"]


async def test_exclusions_apply_as_for_a_webhook(api: httpx.AsyncClient, ps: Shop) -> None:
    three_orders(ps)
    shop = await connected_shop(api, exclusions={"blocked_emails": ["*@example.fr"]})
    report = await backfill(api, shop.id, shop.auth, since="P30D")
    assert report["outcomes"] == {"recorded": 2, "skipped": 1}
    [request] = (
        await api.get(f"/api/v1/shops/{shop.id}/review-requests", headers=shop.auth)
    ).json()["items"]
    assert request["reason"] == "excluded"


async def test_the_real_webhook_after_a_backfill_is_a_duplicate_history(
    api: httpx.AsyncClient, ps: Shop
) -> None:
    three_orders(ps)
    info = await connected_shop(api)
    await backfill(api, info.id, info.auth, since="P30D")
    at = datetime.now(PARIS) - timedelta(days=2)
    event = {
        "type": "order.status_changed",
        "data": {
            "order": {"id": 101},
            "customer": {"email": "marie@example.fr"},
            "history": {"id": 3, "date_add": at.isoformat()},
            "new_state": {"id": 5, "paid": True, "shipped": True},
        },
    }
    body, headers = signed(info.webhook_secret, event)
    answer = await api.post(f"/webhooks/prestashop/{info.id}", content=body, headers=headers)
    assert answer.status_code == 202, answer.text
    events = await api.get(f"/api/v1/shops/{info.id}/events?order_id=101", headers=info.auth)
    outcomes = {
        e["webhook_id"].startswith("reconcile:"): e["outcome"] for e in events.json()["items"]
    }
    assert outcomes == {True: "scheduled", False: "duplicate_history"}


async def test_an_unsubscribed_address_is_skipped_as_suppressed(
    api: httpx.AsyncClient, ps: Shop
) -> None:
    three_orders(ps)
    shop = await connected_shop(api)
    added = await api.post(
        f"/api/v1/shops/{shop.id}/suppressions",
        json={"email": "marie@example.fr", "reason": "manual"},
        headers=shop.auth,
    )
    assert added.status_code in (200, 201), added.text
    report = await backfill(api, shop.id, shop.auth, since="P30D")
    assert report["outcomes"] == {"recorded": 2, "skipped": 1}


async def test_an_erased_address_is_never_written_back(
    api: httpx.AsyncClient, ps: Shop, engine: AsyncEngine
) -> None:
    three_orders(ps)
    shop = await connected_shop(api)
    erased = await api.delete(
        f"/api/v1/shops/{shop.id}/personal-data",
        params={"email": "marie@example.fr"},
        headers=shop.auth,
    )
    assert erased.status_code == 200, erased.text
    report = await backfill(api, shop.id, shop.auth, since="P30D")
    assert report["outcomes"] == {"erased": 1, "recorded": 2}
    async with engine.connect() as conn:
        payloads = (await conn.scalars(select(WebhookEvent.payload))).all()
        emails = (await conn.scalars(select(Order.email))).all()
    assert not any("marie" in p for p in payloads)
    assert "marie@example.fr" not in emails
    requests = await api.get(f"/api/v1/shops/{shop.id}/review-requests", headers=shop.auth)
    assert requests.json()["items"] == []


FAILURES = [
    pytest.param("denied", 502, "GET order_states", id="permission"),
    pytest.param("bad_key", 502, "the key was refused", id="401"),
    pytest.param("500", 502, "HTTP 500", id="500"),
    pytest.param("timeout", 502, "timed out", id="timeout"),
    pytest.param("malformed", 502, "not JSON", id="malformed-json"),
    pytest.param("shape", 502, "orders", id="malformed-shape"),
]


@pytest.mark.parametrize(("failure", "status", "said"), FAILURES)
async def test_a_failing_shop_gives_a_clear_error_and_imports_nothing(
    api: httpx.AsyncClient, ps: Shop, engine: AsyncEngine, failure: str, status: int, said: str
) -> None:
    three_orders(ps)
    shop = await connected_shop(api)
    if failure == "denied":
        ps.denied.add("order_states")
    elif failure == "bad_key":
        ps.key = "SOMETHINGELSE"
    elif failure == "500":
        ps.failing["customers"] = 500
    elif failure == "timeout":
        ps.timeout.add("order_histories")
    elif failure == "malformed":
        ps.malformed.add("orders")
    else:
        ps.tables["orders"][1]["id_customer"] = "not a number"
    response = await api.post(
        f"/api/v1/shops/{shop.id}/backfill", json={"since": "P30D"}, headers=shop.auth
    )
    assert_problem(response, status)
    assert said in response.json()["detail"]
    assert "ABCDEFGH" not in response.text  # the key is never part of an error
    assert await count(engine, WebhookEvent) == 0
    if failure in ("500", "timeout"):  # retried with back-off, then given up
        resource = "customers" if failure == "500" else "order_histories"
        assert sum(1 for r, _ in ps.calls if r == resource) == 3


async def test_a_retried_5xx_that_recovers_imports_everything(
    api: httpx.AsyncClient, ps: Shop
) -> None:
    three_orders(ps)
    shop = await connected_shop(api)
    ps.failing["orders"] = 503
    ps.fail_times = 2
    report = await backfill(api, shop.id, shop.auth, since="P30D")
    assert report["orders"] == 3


async def test_no_webservice_is_404(api: httpx.AsyncClient) -> None:
    from tests.factories import create_shop

    shop = await create_shop(api)
    response = await api.post(f"/api/v1/shops/{shop.id}/backfill", json={}, headers=shop.auth)
    assert_problem(response, 404)


def test_the_cli_reads_its_arguments() -> None:
    from app.cli import _backfill, parser

    args = parser().parse_args(["backfill", "--shop", "shp_x", "--since", "P7D", "--dry-run"])
    assert (args.func, args.shop, args.since, args.dry_run) == (_backfill, "shp_x", "P7D", True)
    assert json.dumps({"ok": True})
