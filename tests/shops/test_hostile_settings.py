"""Settings and rotation bodies that used to be accepted and overflow later: now 422 at once."""

from typing import Any

import httpx
import pytest

from tests.factories import create_shop
from tests.problems import assert_validation_problem

SETTINGS_CASES: dict[str, tuple[dict[str, Any], list[Any]]] = {
    "delay of 1e300 seconds": ({"delay": 1e300}, ["body", "delay"]),
    "delay of 10,000 years": ({"delay": "P3650000D"}, ["body", "delay"]),
    "delay as a 70-digit string": ({"delay": "9" * 70}, ["body", "delay"]),
    "reminder of 99,999,999 days": ({"reminders": ["P99999999D"]}, ["body", "reminders", 0]),
    "max_age of 9,999,999,999 days": ({"max_age": "P9999999999D"}, ["body", "max_age"]),
    "cooldown of infinite hours": (
        {"customer_cooldown": "PT" + "9" * 40 + "H"},
        ["body", "customer_cooldown"],
    ),
    "fallback of NaN": ({"fallback_delay": "NaN"}, ["body", "fallback_delay"]),
    "state id beyond 32 bits": ({"trigger_state_ids": [2**31]}, ["body", "trigger_state_ids", 0]),
    "from_email with a comma": ({"from_email": "a,b@shop.fr"}, ["body", "from_email"]),
    "from_email with a trailing newline": (
        {"from_email": "shop@shop.fr\n"},
        ["body", "from_email"],
    ),
    "reply_to with a header injection": (
        {"reply_to": "shop@shop.fr\r\nBcc: victim@evil.example"},
        ["body", "reply_to"],
    ),
    "from_email over 254 characters": (
        {"from_email": "a" * 60 + "@" + ("b" * 60 + ".") * 4 + "fr"},
        ["body", "from_email"],
    ),
    "from_name with CRLF": ({"from_name": "Shop\r\nBcc: x@evil.example"}, ["body", "from_name"]),
    "from_name with NUL": ({"from_name": "Shop\x00"}, ["body", "from_name"]),
}


@pytest.mark.parametrize("case", SETTINGS_CASES.values(), ids=list(SETTINGS_CASES))
async def test_hostile_setting_is_422_naming_it_and_changes_nothing(
    client: httpx.AsyncClient, case: tuple[dict[str, Any], list[Any]]
) -> None:
    changes, loc = case
    shop = await create_shop(client)
    path = f"/api/v1/shops/{shop.id}/settings"
    before = (await client.get(path, headers=shop.auth)).json()
    response = await client.patch(path, json=changes, headers=shop.auth)
    assert_validation_problem(response, loc)
    assert (await client.get(path, headers=shop.auth)).json() == before


async def test_the_longest_accepted_durations_round_trip(client: httpx.AsyncClient) -> None:
    shop = await create_shop(client)
    changes = {"delay": "P3660D", "reminders": ["P3660D"] * 5, "max_age": 3660 * 86400}
    response = await client.patch(
        f"/api/v1/shops/{shop.id}/settings", json=changes, headers=shop.auth
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["delay"], body["reminders"], body["max_age"]) == (
        "P3660D",
        ["P3660D"] * 5,
        "PT87840H",
    )


@pytest.mark.parametrize("grace", ["P9999999999D", 1e300, "P3661D", -1])
@pytest.mark.parametrize("what", ["api-keys", "webhook-secrets"])
async def test_rotation_refuses_an_overflowing_grace_period(
    client: httpx.AsyncClient, what: str, grace: Any
) -> None:
    shop = await create_shop(client)
    response = await client.post(
        f"/api/v1/shops/{shop.id}/{what}/rotate",
        json={"previous_valid_for": grace},
        headers=shop.auth,
    )
    assert_validation_problem(response, ["body", "previous_valid_for"])
    # The key in use still works: nothing was rotated.
    assert (await client.get(f"/api/v1/shops/{shop.id}", headers=shop.auth)).status_code == 200


async def test_shop_name_with_a_newline_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/shops",
        json={"name": "Shop\r\nX-Evil: 1"},
        headers={"Authorization": "Bearer admin-token-for-tests"},
    )
    assert_validation_problem(response, ["body", "name"])


@pytest.mark.parametrize(
    ("query", "loc"),
    [
        ("order_id=9223372036854775808", ["query", "order_id"]),
        ("order_id=-1", ["query", "order_id"]),
        ("cursor=aWQ6OTIyMzM3MjAzNjg1NDc3NTgwOA", ["query", "cursor"]),
    ],
)
async def test_out_of_range_query_ids_are_422(
    client: httpx.AsyncClient, query: str, loc: list[str]
) -> None:
    shop = await create_shop(client)
    response = await client.get(
        f"/api/v1/shops/{shop.id}/review-requests?{query}", headers=shop.auth
    )
    assert_validation_problem(response, loc, source="query")


async def test_out_of_range_request_id_in_the_path_is_422(client: httpx.AsyncClient) -> None:
    shop = await create_shop(client)
    response = await client.get(
        f"/api/v1/shops/{shop.id}/review-requests/{2**63}", headers=shop.auth
    )
    assert_validation_problem(response, ["path", "request_id"], source="path")
