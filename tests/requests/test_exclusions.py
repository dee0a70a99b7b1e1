"""Exclusions: orders a shop never asks to review, skipped with reason `excluded` and the rule."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.requests.exclusions import excluded_by
from app.requests.models import Delivery
from app.shops.settings import Exclusions
from tests.dispatch.test_dispatch import LATER, at, dispatcher
from tests.factories import create_shop, order_event, post_event
from tests.problems import assert_validation_problem
from tests.smtp_sink import smtp_sink

AMAZON = "*@marketplace.amazon.*"
EVERY = "every product of the order"


def rule(exclusions: dict[str, Any], **order: Any) -> str | None:
    facts: dict[str, Any] = {
        "email_normalized": "marie@example.fr",
        "product_ids": [12],
        "group_ids": None,
        "total_paid": "59.90",
        "newsletter": None,
    }
    return excluded_by(Exclusions.model_validate(exclusions), **{**facts, **order})


@pytest.mark.parametrize(
    ("exclusions", "order", "expected"),
    [
        ({}, {}, None),
        ({"blocked_emails": [AMAZON]}, {"email_normalized": "x1@marketplace.amazon.fr"},
         f"blocked_emails: {AMAZON}"),
        ({"blocked_emails": [AMAZON]}, {}, None),
        ({"blocked_emails": ["Marie@Example.FR"]}, {}, "blocked_emails: marie@example.fr"),
        ({"blocked_emails": ["marie@example.f"]}, {}, None),  # a whole address, not a prefix
        ({"blocked_emails": ["m.rie@example.fr"]}, {}, None),  # `.` is literal
        ({"excluded_product_ids": [12, 13]}, {}, f"excluded_product_ids: {EVERY}"),
        ({"excluded_product_ids": [12]}, {"product_ids": [12, 14]}, None),  # one product is not
        ({"excluded_product_ids": [12]}, {"product_ids": []}, None),
        ({"excluded_group_ids": [3]}, {"group_ids": [1, 3]}, "excluded_group_ids: 3"),
        ({"excluded_group_ids": [3]}, {}, None),  # the event did not say: no rule matches
        ({"min_order_total": "60"}, {}, "min_order_total: 59.90 < 60"),
        ({"min_order_total": "59.90"}, {}, None),
        ({"min_order_total": "60"}, {"total_paid": None}, None),
        ({"newsletter_only": True}, {"newsletter": False}, "newsletter_only"),
        ({"newsletter_only": True}, {"newsletter": True}, None),
        ({"newsletter_only": True}, {}, None),
    ],
)  # fmt: skip
def test_rules(exclusions: dict[str, Any], order: dict[str, Any], expected: str | None) -> None:
    assert rule(exclusions, **order) == expected


@pytest.mark.parametrize(
    ("exclusions", "loc"),
    [
        ({"blocked_emails": ["a b@x.fr"]}, ["body", "exclusions", "blocked_emails", 0]),
        ({"blocked_emails": ["x" * 255]}, ["body", "exclusions", "blocked_emails", 0]),
        ({"min_order_total": "-1"}, ["body", "exclusions", "min_order_total"]),
        ({"min_order_total": "NaN"}, ["body", "exclusions", "min_order_total"]),
        ({"excluded_product_ids": [2**63]}, ["body", "exclusions", "excluded_product_ids", 0]),
        ({"unknown": 1}, ["body", "exclusions", "unknown"]),
    ],
)
async def test_bad_exclusions_are_422(
    client: httpx.AsyncClient, exclusions: dict[str, Any], loc: list[Any]
) -> None:
    shop = await create_shop(client)
    response = await client.patch(
        f"/api/v1/shops/{shop.id}/settings", json={"exclusions": exclusions}, headers=shop.auth
    )
    assert_validation_problem(response, loc)


async def test_an_excluded_order_is_skipped_when_scheduled(client: httpx.AsyncClient) -> None:
    shop = await create_shop(client, exclusions={"blocked_emails": ["*@marketplace.amazon.*"]})
    amazon = order_event(1, 1, 5, email="z8k2@marketplace.amazon.fr")
    assert (await post_event(client, shop, amazon)).status_code == 202
    assert (await post_event(client, shop, order_event(2, 1, 5))).status_code == 202
    items = (
        await client.get(f"/api/v1/shops/{shop.id}/review-requests", headers=shop.auth)
    ).json()["items"]
    by_order = {i["order_id"]: (i["status"], i["reason"]) for i in items}
    assert by_order == {1: ("skipped", "excluded"), 2: ("scheduled", None)}
    [skipped] = [i for i in items if i["order_id"] == 1]
    detail = await client.get(
        f"/api/v1/shops/{shop.id}/review-requests/{skipped['id']}", headers=shop.auth
    )
    [delivery] = detail.json()["deliveries"]
    assert (delivery["status"], delivery["reason"], delivery["last_error"]) == (
        "skipped",
        "excluded",
        "blocked_emails: *@marketplace.amazon.*",
    )


async def test_an_exclusion_added_later_applies_at_send_time(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    shop = await create_shop(client)
    assert (await post_event(client, shop, order_event(1, 1, 5))).status_code == 202
    patched = await client.patch(
        f"/api/v1/shops/{shop.id}/settings",
        json={"exclusions": {"min_order_total": "100.00"}},
        headers=shop.auth,
    )
    assert patched.status_code == 200, patched.text
    with smtp_sink() as (sink, port):
        stats = await dispatcher(engine, settings, port).tick(now=at(LATER))
    assert (stats.sent, stats.skipped, sink.messages) == (0, 1, [])
    async with engine.connect() as conn:
        row = (await conn.execute(select(Delivery.reason, Delivery.last_error))).one()
    assert tuple(row) == ("excluded", "min_order_total: 59.90 < 100.00")


async def test_newsletter_only_uses_the_field_when_the_event_carries_it(
    client: httpx.AsyncClient,
) -> None:
    shop = await create_shop(client, exclusions={"newsletter_only": True})
    for order_id, newsletter in ((1, False), (2, True), (3, None)):
        event = order_event(order_id, 1, 5, at=datetime.now(UTC) - timedelta(minutes=order_id))
        if newsletter is not None:
            event["data"]["customer"]["newsletter"] = newsletter
        assert (await post_event(client, shop, event)).status_code == 202
    items = (
        await client.get(f"/api/v1/shops/{shop.id}/review-requests", headers=shop.auth)
    ).json()["items"]
    assert {i["order_id"]: i["reason"] for i in items} == {1: "excluded", 2: None, 3: None}


async def test_the_list_filters_by_reason(client: httpx.AsyncClient) -> None:
    shop = await create_shop(client, exclusions={"blocked_emails": [AMAZON]})
    amazon = order_event(1, 1, 5, email="z8k2@marketplace.amazon.fr")
    assert (await post_event(client, shop, amazon)).status_code == 202
    assert (await post_event(client, shop, order_event(2, 1, 5))).status_code == 202
    url = f"/api/v1/shops/{shop.id}/review-requests"
    excluded = (await client.get(url, params={"reason": "excluded"}, headers=shop.auth)).json()
    assert [i["order_id"] for i in excluded["items"]] == [1]
    bad = await client.get(url, params={"reason": "no_such_reason"}, headers=shop.auth)
    assert_validation_problem(bad, ["query", "reason"], source="query")
