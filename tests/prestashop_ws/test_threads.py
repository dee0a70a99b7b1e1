"""Customer-service threads read from the Webservice become tickets, run after run."""

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import utcnow
from app.prestashop import runs, threads
from app.prestashop.client import Connector
from app.prestashop.jobs import reconcile_due
from tests.prestashop_ws.conftest import connected_shop, no_sleep
from tests.prestashop_ws.standin import Shop
from tests.prestashop_ws.test_backfill import backfill
from tests.prestashop_ws.test_reconcile import SECRET, row, two_orders

PARIS = ZoneInfo("Europe/Paris")
# An hour ago, whole seconds: every time below is this plus or minus a few hours.
BASE = datetime.now(PARIS).replace(microsecond=0) - timedelta(hours=1)


def text(hours: float) -> str:
    """BASE moved by `hours`, as PrestaShop stores it: the shop's wall-clock time."""
    return (BASE + timedelta(hours=hours)).strftime("%Y-%m-%d %H:%M:%S")


def utc(hours: float) -> datetime:
    return (BASE + timedelta(hours=hours)).astimezone(UTC)


def moment(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


def two_threads(ps: Shop) -> None:
    """A closed pre-sale question, then an open after-sale one with a private note."""
    ps.thread(2, "paul@example.fr", text(-12))
    ps.message(21, 2, text(-12), "Bonjour, avez-vous ce mug en bleu ?")
    ps.message(22, 2, text(-11), "Bonjour, oui, depuis hier.", employee=1)
    ps.set_status(2, "closed", text(-10.5))
    ps.thread(1, "marie@example.fr", text(-10), order_id=101)
    ps.message(11, 1, text(-10), "Bonjour, mon colis n'est toujours pas arrivé.")
    ps.message(12, 1, text(-9), "Transporteur relancé.", employee=1, private=True)
    ps.message(13, 1, text(-8), "Bonjour, il arrive demain. Bien à vous.", employee=1)


async def tickets(api: httpx.AsyncClient, shop: Any) -> dict[str, dict[str, Any]]:
    """The shop's tickets with their messages, by external id."""
    listed = await api.get(f"/api/v1/shops/{shop.id}/tickets", headers=shop.auth)
    assert listed.status_code == 200, listed.text
    found = {}
    for item in listed.json()["items"]:
        detail = await api.get(f"/api/v1/shops/{shop.id}/tickets/{item['id']}", headers=shop.auth)
        found[item["external_id"]] = detail.json()
    return found


async def test_threads_become_tickets_in_the_shops_zone_with_their_timings(
    api: httpx.AsyncClient, ps: Shop, engine: AsyncEngine, connector: Connector
) -> None:
    two_threads(ps)
    shop = await connected_shop(api)
    assert await reconcile_due(engine, SECRET, utcnow(), connector) == {shop.id: "ok"}
    got = await tickets(api, shop)
    assert set(got) == {"ps-thread-1", "ps-thread-2"}

    after = got["ps-thread-1"]
    assert (after["customer_email"], after["order_id"], after["language"]) == (
        "marie@example.fr", 101, "fr"
    )  # fmt: skip
    assert (after["category"], after["channel"], after["status"]) == (
        "after_sale", "prestashop", "open"
    )  # fmt: skip
    assert moment(after["created_at"]) == utc(-10)  # Paris wall-clock, stored as UTC
    assert [
        (m["external_id"], m["author"], m["public"], moment(m["sent_at"]))
        for m in after["messages"]
    ] == [
        ("ps-message-11", "customer", True, utc(-10)),
        ("ps-message-12", "agent", False, utc(-9)),  # a private note is no reply
        ("ps-message-13", "agent", True, utc(-8)),
    ]
    assert moment(after["first_reply_at"]) == utc(-8)
    assert after["first_reply_calendar_s"] == 2 * 3600
    assert after["replies"] == 1

    before = got["ps-thread-2"]
    assert (before["category"], before["order_id"], before["status"]) == (
        "pre_sale", None, "resolved"
    )  # fmt: skip
    assert moment(before["resolved_at"]) == utc(-10.5)  # closed: resolved at its date_upd
    assert before["first_reply_calendar_s"] == 3600
    assert before["resolution_s"] == int(1.5 * 3600)

    # The KPI report reads the same timings.
    days = {"from": str((BASE - timedelta(days=1)).date()), "to": str(BASE.date())}
    kpis = (await api.get(f"/api/v1/shops/{shop.id}/kpis", params=days, headers=shop.auth)).json()
    first_reply = kpis["kpis"]["first_reply_calendar_s_mean"]
    assert (first_reply["value"], first_reply["count"]) == ((7200 + 3600) / 2, 2)

    # Asked as orders are: the window in the shop's time, date=1; never the thread's token.
    [(_, params)] = [c for c in ps.calls if c[0] == "customer_threads"]
    assert params["date"] == "1" and params["filter[date_upd]"].startswith("[")
    assert "token" not in params["display"]
    record = await row(engine, shop.id)
    assert record.last_status == "ok" and record.last_error is None
    assert record.reconciled_until == utc(-8)  # the newest thread read


async def test_later_runs_import_what_changed_follow_the_status_and_duplicate_nothing(
    api: httpx.AsyncClient, ps: Shop, engine: AsyncEngine, connector: Connector
) -> None:
    two_threads(ps)
    shop = await connected_shop(api)
    now = utcnow()
    await reconcile_due(engine, SECRET, now, connector)

    # The customer writes again; the next run reads only the thread that changed.
    ps.message(14, 1, text(0.5), "Toujours rien reçu, pouvez-vous vérifier ?")
    ps.calls.clear()
    now += runs.RECONCILE_EVERY
    assert await reconcile_due(engine, SECRET, now, connector) == {shop.id: "ok"}
    [(_, threads)] = [c for c in ps.calls if c[0] == "customer_threads"]
    assert threads["filter[date_upd]"].startswith(f"[{text(-8)},")
    [(_, messages)] = [c for c in ps.calls if c[0] == "customer_messages"]
    assert messages["filter[id_customer_thread]"] == "[1]"
    got = await tickets(api, shop)
    assert len(got) == 2
    ids = [m["external_id"] for m in got["ps-thread-1"]["messages"]]
    assert ids == ["ps-message-11", "ps-message-12", "ps-message-13", "ps-message-14"]

    # The merchant closes it in PrestaShop: resolved at that moment.
    ps.set_status(1, "closed", text(0.6))
    now += runs.RECONCILE_EVERY
    await reconcile_due(engine, SECRET, now, connector)
    closed = (await tickets(api, shop))["ps-thread-1"]
    assert closed["status"] == "resolved"
    assert moment(closed["resolved_at"]) == utc(0.6)
    assert [(c["status"], c["cause"]) for c in closed["status_changes"]] == [
        ("open", "created"), ("resolved", "api")
    ]  # fmt: skip

    # Reopened in PrestaShop: reopened here; a run with nothing new changes nothing.
    ps.set_status(1, "pending1", text(0.7))
    for _ in range(2):
        now += runs.RECONCILE_EVERY
        assert await reconcile_due(engine, SECRET, now, connector) == {shop.id: "ok"}
    reopened = (await tickets(api, shop))["ps-thread-1"]
    assert (reopened["status"], reopened["reopens"]) == ("open", 1)
    assert len(reopened["messages"]) == 4 and len(reopened["status_changes"]) == 3
    assert moment(reopened["resolved_at"]) == utc(0.6)  # the first resolution stays


async def test_a_key_without_the_permission_is_reported_and_orders_still_import(
    api: httpx.AsyncClient, ps: Shop, engine: AsyncEngine, connector: Connector
) -> None:
    two_orders(ps)
    two_threads(ps)
    ps.denied.add("customer_threads")
    shop = await connected_shop(api)
    assert await reconcile_due(engine, SECRET, utcnow(), connector) == {shop.id: "ok"}
    record = await row(engine, shop.id)
    assert record.last_error == (
        "customer threads not imported: GET permission on customer_threads missing"
    )
    requests = await api.get(f"/api/v1/shops/{shop.id}/review-requests", headers=shop.auth)
    assert [r["order_id"] for r in requests.json()["items"]] == [101]
    assert await tickets(api, shop) == {}
    status = await api.get(f"/api/v1/shops/{shop.id}/prestashop-webservice", headers=shop.auth)
    assert status.json()["last_status"] == "ok"
    assert "customer_threads" in status.json()["last_error"]

    # GET on threads but not on their messages: the same, naming the other resource.
    ps.denied = {"customer_messages"}
    later = utcnow() + runs.RECONCILE_EVERY
    assert await reconcile_due(engine, SECRET, later, connector) == {shop.id: "ok"}
    record = await row(engine, shop.id)
    assert record.last_error == (
        "customer threads not imported: GET permission on customer_messages missing"
    )
    assert await tickets(api, shop) == {}


async def test_a_thread_of_another_shop_never_lands_in_this_one(
    api: httpx.AsyncClient, ps: Shop, engine: AsyncEngine, connector: Connector
) -> None:
    two_threads(ps)
    other = Shop()  # another merchant's PrestaShop: the same thread and message ids
    other.thread(1, "jean@example.com", text(-3), order_id=55)
    other.message(11, 1, text(-3), "Where is my parcel?")
    mine, theirs = await connected_shop(api), await connected_shop(api)
    now = utcnow()
    await runs.reconcile(engine, mine.id, secret_key=SECRET, now=now, connector=connector)
    elsewhere = Connector(transport=other.transport(), sleep=no_sleep)
    await runs.reconcile(engine, theirs.id, secret_key=SECRET, now=now, connector=elsewhere)

    own = await tickets(api, mine)
    assert {t["customer_email"] for t in own.values()} == {"marie@example.fr", "paul@example.fr"}
    [(external_id, their)] = (await tickets(api, theirs)).items()
    assert (external_id, their["customer_email"], their["order_id"]) == (
        "ps-thread-1", "jean@example.com", 55
    )  # fmt: skip
    assert [m["body"] for m in their["messages"]] == ["Where is my parcel?"]
    assert own["ps-thread-1"]["messages"][0]["body"].startswith("Bonjour")
    # A shop's key never opens the other's ticket.
    peek = await api.get(f"/api/v1/shops/{theirs.id}/tickets/{their['id']}", headers=mine.auth)
    assert peek.status_code == 404


async def test_an_overlong_message_is_truncated_and_noted_not_fatal(
    api: httpx.AsyncClient, ps: Shop, engine: AsyncEngine, connector: Connector
) -> None:
    ps.thread(3, "marie@example.fr", text(-5))
    ps.message(31, 3, text(-5), "x" * 70_000)
    ps.message(32, 3, text(-4), "Bien reçu, nous regardons.", employee=1)
    shop = await connected_shop(api)
    assert await reconcile_due(engine, SECRET, utcnow(), connector) == {shop.id: "ok"}
    [long, reply] = (await tickets(api, shop))["ps-thread-3"]["messages"]
    assert len(long["body"]) == 65_536 and long["body"].startswith("xxx")
    assert long["body"].endswith("truncated by Relance: the message was over 65,536 characters]")
    assert reply["body"] == "Bien reçu, nous regardons."
    record = await row(engine, shop.id)
    assert record.last_status == "ok"
    assert record.last_error == "ps-message-31: body over 65536 characters, truncated"


async def test_a_backfill_imports_the_periods_threads_and_a_dry_run_none(
    api: httpx.AsyncClient, ps: Shop, engine: AsyncEngine, connector: Connector
) -> None:
    ps.thread(4, "marie@example.fr", text(-24 * 10), order_id=101)
    ps.message(41, 4, text(-24 * 10), "Bonjour, le mug est arrivé cassé.")
    ps.message(42, 4, text(-24 * 10 + 1), "Désolés, nous le remplaçons.", employee=1)
    ps.thread(5, "paul@example.fr", text(-24 * 40))  # before the period
    shop = await connected_shop(api)
    now, period = utcnow(), timedelta(days=30)

    dry = await runs.backfill(
        engine, shop.id, period, True, secret_key=SECRET, now=now, connector=connector
    )
    assert (dry.threads.threads, dry.threads.outcomes) == (1, {})
    assert await tickets(api, shop) == {}

    # Through the API: the answer reports the threads beside the orders.
    done = await backfill(api, shop.id, shop.auth, since="P30D")
    assert done["threads"] == {
        "imported": True, "threads": 1, "messages": 2, "outcomes": {"created": 1}, "notes": []
    }  # fmt: skip
    [ticket] = (await tickets(api, shop)).values()
    assert (ticket["external_id"], ticket["first_reply_calendar_s"]) == ("ps-thread-4", 3600)

    again = await runs.backfill(
        engine, shop.id, period, False, secret_key=SECRET, now=now, connector=connector
    )
    assert (again.threads.outcomes, again.threads.messages) == ({"unchanged": 1}, 0)
    assert len((await tickets(api, shop))["ps-thread-4"]["messages"]) == 2


async def test_a_run_cut_short_holds_the_cursor_and_the_next_goes_on(
    api: httpx.AsyncClient,
    ps: Shop,
    engine: AsyncEngine,
    connector: Connector,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(threads, "PAGE", 2)
    monkeypatch.setattr(threads, "MAX_THREADS", 4)
    for n in range(1, 7):  # six threads, changed an hour apart
        ps.thread(n, f"client{n}@example.fr", text(-12 + n))
        ps.message(100 + n, n, text(-12 + n), "Bonjour, une question sur ma commande ?")
    shop = await connected_shop(api)
    now = utcnow()
    assert await reconcile_due(engine, SECRET, now, connector) == {shop.id: "ok"}
    assert set(await tickets(api, shop)) == {f"ps-thread-{n}" for n in range(1, 5)}
    held = await row(engine, shop.id)
    assert held.reconciled_until == utc(-8)  # the fourth thread: where the next run starts
    assert held.next_run_at == now  # at once, not in 15 minutes
    assert held.last_error is not None and "cut short" in held.last_error

    assert await reconcile_due(engine, SECRET, now, connector) == {shop.id: "ok"}
    assert set(await tickets(api, shop)) == {f"ps-thread-{n}" for n in range(1, 7)}
    done = await row(engine, shop.id)
    assert done.reconciled_until == utc(-6) and done.last_error is None
    assert done.next_run_at == now + runs.RECONCILE_EVERY


async def test_an_erased_address_is_not_written_back(
    api: httpx.AsyncClient, ps: Shop, engine: AsyncEngine, connector: Connector
) -> None:
    two_threads(ps)
    shop = await connected_shop(api)
    erased = await api.delete(
        f"/api/v1/shops/{shop.id}/personal-data",
        params={"email": "marie@example.fr"},
        headers=shop.auth,
    )
    assert erased.status_code in (200, 204), erased.text
    report = await runs.backfill(
        engine, shop.id, timedelta(days=2), False, secret_key=SECRET, now=utcnow(),
        connector=connector,
    )  # fmt: skip
    assert report.threads.outcomes == {"created": 1, "resolved": 1, "erased": 1}
    assert set(await tickets(api, shop)) == {"ps-thread-2"}
