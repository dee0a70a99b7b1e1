"""The business-hours API: defaults, replacing, strict validation naming the field, isolation;
and `calendar_for`, the calendar the ticket timings are counted in."""

from datetime import UTC, date, datetime
from typing import Any

import httpx
import jsonschema_rs
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.tickets.hours import calendar_for
from tests.factories import ShopInfo, create_shop
from tests.problems import assert_problem, assert_validation_problem

H = 3600
LUNCH = [["09:00", "12:30"], ["14:00", "18:00"]]
HOURS: dict[str, Any] = {
    "timezone": "Europe/Berlin",
    "week": {"1": LUNCH, "2": LUNCH, "3": LUNCH, "4": LUNCH, "5": LUNCH, "6": [["10:00", "24:00"]]},
    "holidays": "de",
    "holidays_subdivision": "by",
    "closed_dates": ["2026-12-31", "2026-12-24", "2026-12-31"],
}
DEFAULT_WEEK = {
    **{str(day): [["09:00", "18:00"]] for day in range(1, 6)},
    "6": [],
    "7": [],
}


def path(shop: ShopInfo) -> str:
    return f"/api/v1/shops/{shop.id}/business-hours"


async def conforms(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    """The answer is what the OpenAPI document says a BusinessHoursRead is."""
    document = (await client.get("/openapi.json")).json()
    root = {"$ref": "#/components/schemas/BusinessHoursRead", "components": document["components"]}
    errors = [e.message for e in jsonschema_rs.validator_for(root).iter_errors(body)]
    assert errors == [], errors


async def test_without_hours_the_defaults_are_shown_and_counted(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    shop = await create_shop(client, timezone="America/New_York")
    response = await client.get(path(shop), headers=shop.auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == {
        "timezone": "America/New_York",  # the shop's settings zone
        "week": DEFAULT_WEEK,
        "holidays": None,
        "holidays_subdivision": None,
        "closed_dates": [],
        "is_default": True,
        "updated_at": None,
    }
    await conforms(client, body)
    async with engine.connect() as conn:
        calendar = await calendar_for(conn, shop.id)
    # Monday 2 March 2026, 17:00 in New York (22:00 UTC) -> Tuesday 10:00 (15:00 UTC): 2 h.
    start, end = datetime(2026, 3, 2, 22, tzinfo=UTC), datetime(2026, 3, 3, 15, tzinfo=UTC)
    assert calendar.business_seconds(start, end) == 2 * H


async def test_put_then_get_gives_the_stored_hours(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    shop = await create_shop(client)
    put = await client.put(path(shop), json=HOURS, headers=shop.auth)
    assert put.status_code == 200, put.text
    got = await client.get(path(shop), headers=shop.auth)
    assert got.status_code == 200, got.text
    assert got.json() == put.json()
    body = got.json()
    await conforms(client, body)
    assert body["is_default"] is False
    assert datetime.fromisoformat(body["updated_at"]).tzinfo is not None
    assert body["timezone"] == "Europe/Berlin"
    assert body["week"] == {**HOURS["week"], "7": []}  # every day, the missing one closed
    assert (body["holidays"], body["holidays_subdivision"]) == ("DE", "BY")  # as spelt there
    assert body["closed_dates"] == ["2026-12-24", "2026-12-31"]  # sorted, once each

    async with engine.connect() as conn:
        calendar = await calendar_for(conn, shop.id)
    assert calendar.holidays == "DE"
    assert calendar.closed_dates == {date(2026, 12, 24), date(2026, 12, 31)}
    # Wednesday 3 June 2026 17:00 in Berlin (15:00 UTC) -> Friday 10:00 (08:00 UTC): Thursday
    # is Corpus Christi in Bavaria, so 1 h on Wednesday + 1 h on Friday.
    start, end = datetime(2026, 6, 3, 15, tzinfo=UTC), datetime(2026, 6, 5, 8, tzinfo=UTC)
    assert calendar.business_seconds(start, end) == 2 * H
    # Saturday 10:00-24:00 is 14 h; Friday 24 December 2026 is closed.
    saturday = datetime(2026, 6, 6, 8, tzinfo=UTC)
    assert calendar.business_seconds(saturday, datetime(2026, 6, 7, tzinfo=UTC)) == 14 * H
    assert calendar.is_closed_date(date(2026, 12, 24))


async def test_a_second_put_replaces_everything(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    shop = await create_shop(client)
    assert (await client.put(path(shop), json=HOURS, headers=shop.auth)).status_code == 200
    again = {"timezone": "Europe/Paris", "week": {"7": [["08:00", "09:00"]]}}
    response = await client.put(path(shop), json=again, headers=shop.auth)
    assert response.status_code == 200, response.text
    body = (await client.get(path(shop), headers=shop.auth)).json()
    assert body["week"] == {**{str(d): [] for d in range(1, 7)}, "7": [["08:00", "09:00"]]}
    assert (body["holidays"], body["holidays_subdivision"], body["closed_dates"]) == (
        None,
        None,
        [],
    )
    async with engine.connect() as conn:
        calendar = await calendar_for(conn, shop.id)
    assert calendar.timezone == "Europe/Paris"
    assert calendar.holidays is None


VALID = {"timezone": "Europe/Paris", "week": {"1": [["09:00", "18:00"]]}}


def week(*intervals: Any, day: str = "1") -> dict[str, Any]:
    return {**VALID, "week": {day: list(intervals)}}


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({**VALID, "timezone": "Mars/Olympus"}, ["body", "timezone"]),
        ({**VALID, "timezone": "Europe/" + "x" * 80}, ["body", "timezone"]),
        ({"week": VALID["week"]}, ["body", "timezone"]),
        ({"timezone": "Europe/Paris"}, ["body", "week"]),
        (week(["09:00", "18:00"], day="8"), ["body", "week", "8"]),
        (week(["09:00", "18:00"], day="0"), ["body", "week", "0"]),
        (week(["9:00", "18:00"]), ["body", "week", "1", 0, 0]),
        (week(["09:00", "18:60"]), ["body", "week", "1", 0, 1]),
        (week(["09:00:00", "18:00"]), ["body", "week", "1", 0, 0]),
        (week(["18:00", "09:00"]), ["body", "week", "1", 0]),
        (week(["09:00", "09:00"]), ["body", "week", "1", 0]),
        (week(["24:00", "24:00"]), ["body", "week", "1", 0]),
        (week(["09:00", "13:00"], ["12:00", "18:00"]), ["body", "week", "1"]),
        (week(["14:00", "18:00"], ["09:00", "12:00"]), ["body", "week", "1"]),
        (week(*[[f"0{h}:00", f"0{h}:30"] for h in range(7)]), ["body", "week", "1"]),
        (week(["09:00", "12:00", "18:00"]), ["body", "week", "1", 0]),
        ({**VALID, "holidays": "XX"}, ["body", "holidays"]),
        ({**VALID, "holidays": "FRA"}, ["body", "holidays"]),
        (
            {**VALID, "holidays": "FR", "holidays_subdivision": "BY"},
            ["body", "holidays_subdivision"],
        ),
        ({**VALID, "holidays_subdivision": "BY"}, ["body", "holidays_subdivision"]),
        ({**VALID, "closed_dates": ["2026-02-30"]}, ["body", "closed_dates", 0]),
        ({**VALID, "closed_dates": ["2026-12-24", 20261225]}, ["body", "closed_dates", 1]),
        ({**VALID, "closed_dates": ["1969-12-31"]}, ["body", "closed_dates", 0]),
        ({**VALID, "closed_dates": ["24/12/2026"]}, ["body", "closed_dates", 0]),
        (
            {**VALID, "closed_dates": [f"2026-01-{d:02d}" for d in range(1, 32)] * 12},
            ["body", "closed_dates"],
        ),
        ({**VALID, "colour": "blue"}, ["body", "colour"]),
    ],
)
async def test_each_refusal_names_its_field(
    client: httpx.AsyncClient, body: dict[str, Any], loc: list[Any]
) -> None:
    shop = await create_shop(client)
    response = await client.put(path(shop), json=body, headers=shop.auth)
    assert_validation_problem(response, loc)
    # nothing was stored
    assert (await client.get(path(shop), headers=shop.auth)).json()["is_default"] is True


async def test_another_shops_key_gets_404_and_no_key_401(client: httpx.AsyncClient) -> None:
    shop, other = await create_shop(client), await create_shop(client, name="Autre")
    foreign = {"Authorization": f"Bearer {other.api_key}"}
    assert_problem(await client.get(path(shop), headers=foreign), 404)
    assert_problem(await client.put(path(shop), json=HOURS, headers=foreign), 404)
    assert_problem(await client.get(path(shop)), 401)
    assert_problem(await client.put(path(shop), json=HOURS), 401)
    # the shop's hours did not change
    assert (await client.get(path(shop), headers=shop.auth)).json()["is_default"] is True
