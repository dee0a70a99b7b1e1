"""The KPI report on a small fixture worked out by hand (the worked example of docs/kpis.md).

Shop A, Europe/Paris (CET, UTC+1, until Sunday 2026-03-29 02:00; CEST, UTC+2, after), its
support hours the default Monday-Friday 09:00-18:00 (07:00-16:00 UTC after the change).
Period: 2026-03-23 (Monday) .. 2026-04-05 (Sunday), so in UTC [2026-03-22 23:00, 2026-04-05
22:00). The report's `now` is 2026-04-06 10:00 UTC. Times below are UTC. Rows are inserted
directly, the computed columns filled as app/tickets/models.py defines them.

Tickets (period_date = local date of the first message needing a reply):
  T1 pre_sale   L1 03-23  first need 03-23 08:00, reply 09:00 (3600 b / 3600 c s), replies 1,
                exchanges 2, resolved 03-23 10:00 (7200 s), csat 5, nps 10, a@x
  T2 after_sale L2 03-24  need 03-24 16:00, reply 03-26 10:00 (100000 b / 151200 c), replies 3,
                exchanges 7, resolved 03-27 10:00 (237600), reopened once, csat 2, nps 3
  T3 complaint  L1 04-03  need Friday 04-03 15:00, reply Monday 04-06 07:00 (3600 b / 230400
                c): after the period's end, still counts; replies 1, exchanges 3, resolved
                04-06 08:00 (234000), csat 4, nps 8
  T4 pre_sale   -  04-05  need 04-05 21:30 (23:30 local, last day: in), no reply, deadline
                04-08 15:00 not passed at `now`: left out of the 24 h rate; d@x
  T5 return     L2 03-25  no message needing a reply (a closing thanks), resolved after
                7200 s, replies 0, exchanges 1
  T6 after_sale    04-06  need 04-05 22:30 (00:30 local next day: out), csat 1
  T7 pre_sale      03-26  need 03-26 10:00, no reply, deadline 03-27 10:00 passed, g@x

  acknowledged_24h_rate: T1 ok, T2 late, T3 ok (3600 business s), T7 missed, T4 left out
      -> 2/4 = 0.5 (target 0.9: bad)
  first_reply_business_s: 3600, 100000, 3600 -> mean 35733.333333, median 3600
  first_reply_calendar_s: 3600, 151200, 230400 -> mean 128400, median 151200
  resolution_s (T1, T2, T3, T5): 7200, 7200, 234000, 237600 -> mean 121500,
      median (7200 + 234000) / 2 = 120600 (even count: interpolated)
  exchanges_per_ticket: (2 + 7 + 3 + 1) / 4 = 3.25 (target 5: ok); level 1: (2 + 3) / 2 =
      2.5, level 2: (7 + 1) / 2 = 4, no level: none
  first_contact_resolution_rate: T1, T3, T5 (<= 1 reply, never reopened) -> 3/4 = 0.75
  reopen_rate: T2 -> 1/4 = 0.25
  csat: 5, 2, 4 -> 2/3 (target 0.8 set for the shop: missed by 0.133 < 0.16: watch)
Orders created in the period (date_add; for O4 its first history entry): O1 03-25, O4 03-28,
  O5 04-05 21:30 (in), O7 03-24, O8 03-26, O9 03-31, O10 03-29 21:30 (Sunday 23:30 local),
  O11 03-29 22:30 (Monday 00:30 local), O12 04-01, O13 04-02 -> 10. Out: O2 03-20, O3 05-01,
  O6 04-05 22:30.
  pre_sale_contact_rate 3/10 = 0.3 (target 0.1: bad); after_sale 1/10 = 0.1 (0.15: ok);
  complaint 1/10 = 0.1 (no target)
  conversion_after_pre_sale_rate: T1 (a@x ordered O1 two days later) yes; T4 (no order) no;
  T7 (g@x ordered 6 days before and 36 days after) no -> 1/3
return_rate: first Delivered (5) in the period: O1 03-27, O4 03-30, O7 03-26, O9 04-01 (O5
  04-06 and O8 03-20 first: out) -> 4; O1 has a return event, O4 reached Refunded (7) on 04-20
  -> 2/4 = 0.5 (shop B's return event for order 7 does not count)
Messages (period_date = local date of sent_at) needing a reply, decided: M1 (T1, answered in
  3600 b), M3 (T2, 100000), M5 (T2, 25200), M10 (T3, 3600), M7 (T7, unanswered, deadline
  passed); M8 (T4) left out (deadline not passed), M14 automatic, M9 a closing thanks, M12 out
  -> response_rate 4/5 = 0.8; reply_business_s 3600, 3600, 25200, 100000 -> mean 33100,
  median (3600 + 25200) / 2 = 14400
Ratings, by their ticket's period: M2 (T1) 5/4, M4 (T2) 2/3, M11 (T3, sent 04-06) 4/5; M15
  (T6) out -> speed (5 + 2 + 4) / 3 = 3.666667, quality (4 + 3 + 5) / 3 = 4
Review requests (dry runs left out): sent in the period Q1, Q2, Q3, Q10 (Q4 sent 04-05 22:30:
  out) -> 4; clicked Q1, Q2, Q10 -> 0.75; reviewed Q1 (5), Q2 (2), Q3 (4) -> review_rate 0.75,
  rating mean 11/3; skipped Q6 (excluded), Q7 (customer_cooldown) -> 2; cancelled Q8
  (order_refunded) -> 1
nps: tickets 10, 3, 8 and reviews (by their date) 9, 0, 10 -> promoters 3, detractors 2 of 6
  -> 100 * (3 - 2) / 6 = 16.666667
sentiment: messages M1 -, M3 -, M5 =, M7 +, M8 +, M9 + and reviews R1 +, R2 - (R3 has no
  comment, R4 is a dry run's) -> 8 comments, positive 4/8 = 0.5, negative 3/8 = 0.375;
  fr 5 (3 +, 2 -), en 2 (0 +, 1 -), de 1 (1 +)
Weeks: 03-23 (the DST week) holds T1, T2, T5, T7, orders O1, O4, O7, O8, O10; 03-30 holds T3,
  T4, orders O5, O9, O11, O12, O13. Months: March 7 orders, April 3.
"""

from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.kpis import service
from app.orders.models import Order, OrderHistory
from app.requests.models import Delivery, ReviewRequest
from app.reviews.models import Review
from app.shops.settings import KPI_UNITS
from app.tickets.models import Ticket, TicketMessage
from app.webhooks.models import WebhookEvent
from tests.factories import ShopInfo, create_shop
from tests.problems import assert_validation_problem

FROM, TO = date(2026, 3, 23), date(2026, 4, 5)
NOW = datetime(2026, 4, 6, 10, tzinfo=UTC)
TARGETS = {
    "acknowledged_24h_rate": 0.9,
    "pre_sale_contact_rate": 0.1,
    "after_sale_contact_rate": 0.15,
    "exchanges_per_ticket": 5,
    "csat": 0.8,
}


def at(month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def ticket(shop: str, ext: str, period: date, **values: Any) -> dict[str, Any]:
    email = values.pop("email", f"{ext}@example.fr")
    created = values.pop("created_at", values.get("first_needing_at") or at(3, 1))
    row = {
        "shop_id": shop,
        "external_id": ext,
        "customer_email": email,
        "email_normalized": email,
        "category": "other",
        "level": None,
        "level_detected": False,
        "status": "open",
        "created_at": created,
        "updated_at": created,
        "period_date": period,
        "first_customer_at": values.get("first_needing_at", created),
        "replies": 0,
        "exchanges": 1,
        "reopens": 0,
    }
    return {**row, **values}


def message(shop: str, ext: str, ticket_id: int, sent: datetime, **values: Any) -> dict[str, Any]:
    row = {
        "shop_id": shop,
        "ticket_id": ticket_id,
        "external_id": ext,
        "author": "customer",
        "public": True,
        "automatic": False,
        "sent_at": sent,
        "period_date": values.pop("period", sent.date()),
        "needs_reply": True,
        "needs_reply_detected": False,
        "created_at": sent,
    }
    if row["author"] == "customer" and values.get("author", "customer") == "customer":
        row["deadline_at"] = values.pop("deadline", None)
    return {**row, **values}


def order(shop: str, order_id: int, ordered: datetime | None, email: str) -> dict[str, Any]:
    return {
        "shop_id": shop,
        "order_id": order_id,
        "email": email,
        "email_normalized": email,
        "ordered_at": ordered,
        "products": [],
        "state_id": 5,
        "history_id": 1,
        "state_at": ordered or at(3, 28),
        "created_at": ordered or at(3, 28),
        "updated_at": ordered or at(3, 28),
    }


def history(shop: str, order_id: int, hid: int, state: int, when: datetime) -> dict[str, Any]:
    return {
        "shop_id": shop,
        "order_id": order_id,
        "history_id": hid,
        "state_id": state,
        "paid": state in (2, 5),
        "shipped": state == 5,
        "occurred_at": when,
        "event_id": hid,
    }


def request(shop: str, order_id: int, status: str, when: datetime, **values: Any) -> dict[str, Any]:
    row = {
        "shop_id": shop,
        "order_id": order_id,
        "email": "r@example.fr",
        "email_normalized": "r@example.fr",
        "language": "fr",
        "status": status,
        "reason": None,
        "source": "trigger",
        "trigger_history_id": 1,
        "trigger_at": when,
        "due_at": when,
        "sent_at": when if status == "sent" else None,
        "created_at": when,
        "updated_at": when,
        "dry_run": False,
    }
    return {**row, **values}


async def insert_fixture(engine: AsyncEngine, a: str, b: str) -> None:
    async with engine.begin() as conn:

        async def add(model: Any, rows: list[dict[str, Any]]) -> list[int]:
            table = model.__table__
            if "id" not in table.c:
                await conn.execute(insert(table), rows)
                return []
            return [
                (await conn.execute(insert(table).returning(table.c.id), r)).scalar_one()
                for r in rows
            ]

        t1, t2, t3, t4, t5, t6, t7, tb = await add(
            Ticket,
            [
                ticket(a, "T1", date(2026, 3, 23), category="pre_sale", level=1,
                       email="a@x", first_needing_at=at(3, 23, 8), ack_deadline_at=at(3, 24, 16),
                       first_reply_at=at(3, 23, 9), first_reply_business_s=3600,
                       first_reply_calendar_s=3600, replies=1, exchanges=2,
                       resolved_at=at(3, 23, 10), resolution_s=7200, csat=5, nps=10,
                       status="resolved"),
                ticket(a, "T2", date(2026, 3, 24), category="after_sale", level=2,
                       first_needing_at=at(3, 24, 16), ack_deadline_at=at(3, 27, 16),
                       first_reply_at=at(3, 26, 10), first_reply_business_s=100000,
                       first_reply_calendar_s=151200, replies=3, exchanges=7,
                       resolved_at=at(3, 27, 10), resolution_s=237600, reopens=1, csat=2,
                       nps=3),
                ticket(a, "T3", date(2026, 4, 3), category="complaint", level=1,
                       first_needing_at=at(4, 3, 15), ack_deadline_at=at(4, 8, 15),
                       first_reply_at=at(4, 6, 7), first_reply_business_s=3600,
                       first_reply_calendar_s=230400, replies=1, exchanges=3,
                       resolved_at=at(4, 6, 8), resolution_s=234000, csat=4, nps=8),
                ticket(a, "T4", date(2026, 4, 5), category="pre_sale", email="d@x",
                       first_needing_at=at(4, 5, 21, 30), ack_deadline_at=at(4, 8, 15)),
                ticket(a, "T5", date(2026, 3, 25), category="return", level=2,
                       created_at=at(3, 25), resolved_at=at(3, 25, 12), resolution_s=7200),
                ticket(a, "T6", date(2026, 4, 6), category="after_sale",
                       first_needing_at=at(4, 5, 22, 30), ack_deadline_at=at(4, 7, 7),
                       first_reply_at=at(4, 6, 8), first_reply_business_s=3600,
                       first_reply_calendar_s=34200, replies=1, exchanges=2, csat=1,
                       resolved_at=at(4, 6, 9), resolution_s=37800),
                ticket(a, "T7", date(2026, 3, 26), category="pre_sale", email="g@x",
                       first_needing_at=at(3, 26), ack_deadline_at=at(3, 27)),
                ticket(b, "TB", date(2026, 3, 26), category="pre_sale", email="a@x",
                       first_needing_at=at(3, 26), ack_deadline_at=at(3, 27), csat=1,
                       first_reply_at=at(3, 26, 11), first_reply_business_s=3600,
                       first_reply_calendar_s=3600, replies=1),
            ],
        )  # fmt: skip
        await add(
            TicketMessage,
            [
                message(a, "M1", t1, at(3, 23, 8), answered_at=at(3, 23, 9),
                        reply_business_s=3600, reply_calendar_s=3600, sentiment="negative",
                        language="fr", deadline=at(3, 24, 16)),
                message(a, "M2", t1, at(3, 23, 9), author="agent", needs_reply=False,
                        speed_rating=5, quality_rating=4, rated_at=at(3, 23, 12)),
                message(a, "M3", t2, at(3, 24, 16), answered_at=at(3, 26),
                        reply_business_s=100000, reply_calendar_s=151200,
                        sentiment="negative", language="en", deadline=at(3, 27, 16)),
                message(a, "M4", t2, at(3, 26), author="agent", needs_reply=False,
                        speed_rating=2, quality_rating=3, rated_at=at(3, 26, 12)),
                message(a, "M5", t2, at(3, 26, 12), answered_at=at(3, 27, 9),
                        reply_business_s=25200, reply_calendar_s=75600, sentiment="neutral",
                        language="en", deadline=at(3, 30, 11)),
                message(a, "M6", t2, at(3, 27, 9), author="agent", needs_reply=False),
                message(a, "M7", t7, at(3, 26), sentiment="positive", language="de",
                        deadline=at(3, 27)),
                message(a, "M8", t4, at(4, 5, 21, 30), sentiment="positive", language="fr",
                        deadline=at(4, 8, 15), period=date(2026, 4, 5)),
                message(a, "M9", t5, at(3, 25), needs_reply=False, needs_reply_detected=True,
                        needs_reply_rule="closing_thanks.fr", sentiment="positive",
                        language="fr"),
                message(a, "M10", t3, at(4, 3, 15), answered_at=at(4, 6, 7),
                        reply_business_s=3600, reply_calendar_s=230400, deadline=at(4, 8, 15)),
                message(a, "M11", t3, at(4, 6, 7), author="agent", needs_reply=False,
                        speed_rating=4, quality_rating=5, rated_at=at(4, 6, 9)),
                message(a, "M12", t6, at(4, 5, 22, 30), answered_at=at(4, 6, 8),
                        reply_business_s=3600, reply_calendar_s=34200, sentiment="negative",
                        language="fr", deadline=at(4, 7, 7), period=date(2026, 4, 6)),
                message(a, "M13", t1, at(3, 23, 9, 30), author="agent", public=False,
                        needs_reply=False),
                message(a, "M14", t3, at(3, 30, 8), automatic=True, deadline=at(3, 31, 8)),
                message(a, "M15", t6, at(4, 6, 8), author="agent", needs_reply=False,
                        speed_rating=1, quality_rating=1, rated_at=at(4, 6, 9)),
                message(b, "MB", tb, at(3, 26), answered_at=at(3, 26, 11),
                        reply_business_s=3600, reply_calendar_s=3600, sentiment="negative",
                        language="fr", deadline=at(3, 27)),
            ],
        )  # fmt: skip
        orders = [
            (1, at(3, 25), "a@x"), (2, at(3, 20), "g@x"), (3, at(5, 1), "g@x"),
            (4, None, "b@x"), (5, at(4, 5, 21, 30), "c@x"), (6, at(4, 5, 22, 30), "e@x"),
            (7, at(3, 24), "o7@x"), (8, at(3, 26), "o8@x"), (9, at(3, 31), "o9@x"),
            (10, at(3, 29, 21, 30), "o10@x"), (11, at(3, 29, 22, 30), "o11@x"),
            (12, at(4, 1), "o12@x"), (13, at(4, 2), "o13@x"),
        ]  # fmt: skip
        await add(Order, [order(a, i, when, email) for i, when, email in orders])
        await add(Order, [order(b, 7, at(3, 24), "o7@x")])
        await add(
            OrderHistory,
            [
                history(a, 1, 1, 2, at(3, 25)), history(a, 1, 2, 5, at(3, 27)),
                history(a, 4, 3, 2, at(3, 28)), history(a, 4, 4, 5, at(3, 30)),
                history(a, 4, 5, 7, at(4, 20)), history(a, 5, 6, 5, at(4, 6)),
                history(a, 7, 7, 5, at(3, 26)), history(a, 8, 8, 5, at(3, 20)),
                history(a, 8, 9, 5, at(3, 29)), history(a, 9, 10, 5, at(4, 1)),
                history(b, 7, 1, 5, at(3, 26)),
            ],
        )  # fmt: skip
        await add(
            WebhookEvent,
            [
                {"shop_id": s, "webhook_id": f"ret-{n}", "type": "order.return_requested",
                 "order_id": n, "received_at": at(4, 2), "outcome": "recorded", "payload": "{}"}
                for s, n in ((a, 1), (b, 7))
            ],
        )  # fmt: skip
        q1, q2, q3, _q4, q5, *_rest, q10 = await add(
            ReviewRequest,
            [
                request(a, 1, "sent", at(3, 25, 12)),
                request(a, 4, "sent", at(3, 30)),
                request(a, 7, "sent", at(4, 1)),
                request(a, 9, "sent", at(4, 5, 22, 30)),
                request(a, 8, "sent", at(3, 28), dry_run=True),
                request(a, 20, "skipped", at(3, 24), reason="excluded"),
                request(a, 21, "skipped", at(3, 31), reason="customer_cooldown"),
                request(a, 22, "cancelled", at(4, 3), reason="order_refunded"),
                request(a, 23, "skipped", at(3, 24), reason="excluded", dry_run=True),
                request(a, 10, "sent", at(3, 29)),
            ],
        )

        def delivery(req: int, clicked: datetime | None, dry: bool = False) -> dict[str, Any]:
            return {"request_id": req, "shop_id": a, "kind": "first", "seq": 0, "status": "sent",
                    "due_at": at(3, 20), "clicked_at": clicked, "dry_run": dry,
                    "created_at": at(3, 20), "updated_at": at(3, 20)}  # fmt: skip

        await add(
            Delivery,
            [
                delivery(q1, at(3, 26)), delivery(q2, at(3, 31)), delivery(q3, None),
                delivery(q5, at(3, 29), dry=True), delivery(q10, at(3, 30)),
            ],
        )  # fmt: skip

        def review(req: int, order_id: int, rating: int, **values: Any) -> dict[str, Any]:
            return {"shop_id": a, "request_id": req, "order_id": order_id, "rating": rating,
                    "status": "published", "language": "fr", **values,
                    "updated_at": values["created_at"]}  # fmt: skip

        await add(
            Review,
            [
                review(q1, 1, 5, nps=9, sentiment="positive", comment="Top",
                       created_at=at(3, 27)),
                review(q2, 4, 2, nps=0, sentiment="negative", comment="Bof",
                       created_at=at(4, 5, 21, 30)),
                review(q3, 7, 4, nps=10, created_at=at(4, 2)),
                review(q5, 8, 5, nps=10, sentiment="positive", comment="Top",
                       created_at=at(3, 29)),
            ],
        )  # fmt: skip


async def shops(client: httpx.AsyncClient, engine: AsyncEngine) -> tuple[ShopInfo, ShopInfo]:
    a = await create_shop(client, "A", kpis={"targets": TARGETS})
    b = await create_shop(client, "B")
    await insert_fixture(engine, a.id, b.id)
    return a, b


EXPECTED: dict[str, tuple[float | None, int, str | None]] = {
    # key: (value, count, status)
    "acknowledged_24h_rate": (0.5, 4, "bad"),
    "first_reply_business_s_mean": (35733.333333, 3, None),
    "first_reply_business_s_median": (3600, 3, None),
    "first_reply_calendar_s_mean": (128400, 3, None),
    "first_reply_calendar_s_median": (151200, 3, None),
    "reply_business_s_mean": (33100, 4, None),
    "reply_business_s_median": (14400, 4, None),
    "response_rate": (0.8, 5, None),
    "resolution_s_mean": (121500, 4, None),
    "resolution_s_median": (120600, 4, None),
    "exchanges_per_ticket": (3.25, 4, "ok"),
    "first_contact_resolution_rate": (0.75, 4, None),
    "reopen_rate": (0.25, 4, None),
    "pre_sale_contact_rate": (0.3, 10, "bad"),
    "after_sale_contact_rate": (0.1, 10, "ok"),
    "complaint_rate": (0.1, 10, None),
    "return_rate": (0.5, 4, None),
    "csat": (0.666667, 3, "watch"),
    "nps": (16.666667, 6, None),
    "speed_rating_mean": (3.666667, 3, None),
    "quality_rating_mean": (4.0, 3, None),
    "conversion_after_pre_sale_rate": (0.333333, 3, None),
    "review_requests_sent": (4, 4, None),
    "review_requests_skipped": (2, 2, None),
    "review_requests_cancelled": (1, 1, None),
    "review_click_rate": (0.75, 4, None),
    "review_rate": (0.75, 4, None),
    "review_rating_mean": (3.666667, 3, None),
    "sentiment_positive_share": (0.5, 8, None),
    "sentiment_negative_share": (0.375, 8, None),
}


def figures(kpis: dict[str, Any]) -> dict[str, tuple[float | None, int, str | None]]:
    return {
        k: (None if v["value"] is None else round(v["value"], 6), v["count"], v["status"])
        for k, v in kpis.items()
    }


async def test_each_kpi_of_the_worked_example(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    a, _ = await shops(client, engine)
    async with engine.connect() as conn:
        report = (await service.report(conn, a.id, FROM, TO, now=NOW)).model_dump(by_alias=True)
    assert report["from"] == FROM and report["to"] == TO
    assert report["timezone"] == "Europe/Paris"
    assert figures(report["kpis"]) == EXPECTED
    kpis = report["kpis"]
    assert kpis["pre_sale_contact_rate"]["target"] == 0.1
    assert kpis["pre_sale_contact_rate"]["unit"] == "ratio"
    assert kpis["nps"]["unit"] == "score"
    assert kpis["exchanges_per_ticket"]["breakdown"] == {
        "1": {"value": 2.5, "count": 2},
        "2": {"value": 4.0, "count": 2},
        "none": {"value": None, "count": 0},
    }
    assert kpis["review_requests_skipped"]["breakdown"] == {
        "customer_cooldown": {"value": 1, "count": 1},
        "excluded": {"value": 1, "count": 1},
    }
    assert kpis["review_requests_cancelled"]["breakdown"] == {
        "order_refunded": {"value": 1, "count": 1}
    }
    assert kpis["sentiment_positive_share"]["breakdown"] == {
        "de": {"value": 1.0, "count": 1},
        "en": {"value": 0.0, "count": 2},
        "fr": {"value": 0.6, "count": 5},
    }
    assert kpis["sentiment_negative_share"]["breakdown"]["en"] == {"value": 0.5, "count": 2}
    accuracy = service.sentiment_accuracy()
    weak = [lang for lang in ("de", "en", "fr") if accuracy.get(lang, 0.0) < 0.8]
    assert kpis["sentiment_positive_share"]["indicative_languages"] == weak


async def test_the_api_answers_the_same_and_deadlines_pass_with_time(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    a, b = await shops(client, engine)
    response = await client.get(
        f"/api/v1/shops/{a.id}/kpis", params={"from": "2026-03-23", "to": "2026-04-05"},
        headers=a.auth,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["from"], body["to"], body["series"]) == ("2026-03-23", "2026-04-05", None)
    got = figures(body["kpis"])
    # Today T4's and M8's deadlines have passed: both count, unanswered.
    assert got["acknowledged_24h_rate"] == (0.4, 5, "bad")
    assert got["response_rate"] == (round(4 / 6, 6), 6, None)
    assert {
        k: v for k, v in got.items() if k not in ("acknowledged_24h_rate", "response_rate")
    } == {k: v for k, v in EXPECTED.items() if k not in ("acknowledged_24h_rate", "response_rate")}
    # Shop B sees its own ticket only: one pre-sale ticket, one order.
    other = await client.get(
        f"/api/v1/shops/{b.id}/kpis", params={"from": "2026-03-23", "to": "2026-04-05"},
        headers=b.auth,
    )  # fmt: skip
    theirs = figures(other.json()["kpis"])
    assert theirs["pre_sale_contact_rate"] == (1.0, 1, "bad")
    assert theirs["csat"] == (0.0, 1, None)
    assert theirs["return_rate"] == (1.0, 1, None)
    assert theirs["review_requests_sent"] == (None, 0, None)
    # A key opens its own shop only.
    denied = await client.get(
        f"/api/v1/shops/{b.id}/kpis", params={"from": "2026-03-23", "to": "2026-04-05"},
        headers=a.auth,
    )  # fmt: skip
    assert denied.status_code in (401, 403, 404)


async def test_weekly_series_in_the_shops_zone_across_the_dst_change(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    a, _ = await shops(client, engine)
    async with engine.connect() as conn:
        report = await service.report(conn, a.id, FROM, TO, now=NOW, granularity="week")
    assert report.series is not None
    assert [p.period_start for p in report.series] == [date(2026, 3, 23), date(2026, 3, 30)]
    first, second = (figures(p.model_dump()["kpis"]) for p in report.series)
    # O10 (Sunday 23:30 CEST) is in the DST week, O11 (Monday 00:30 CEST) in the next one.
    assert first["pre_sale_contact_rate"] == (0.4, 5, "bad")  # T1, T7 / 5 orders
    assert second["pre_sale_contact_rate"] == (0.2, 5, "bad")  # T4 / 5 orders
    assert first["after_sale_contact_rate"] == (0.2, 5, "bad")
    assert second["complaint_rate"] == (0.2, 5, None)
    assert first["acknowledged_24h_rate"] == (round(1 / 3, 6), 3, "bad")  # T1 of T1, T2, T7
    assert second["acknowledged_24h_rate"] == (1.0, 1, "ok")  # T3; T4 left out
    assert first["resolution_s_median"] == (7200, 3, None)  # 7200, 7200, 237600
    assert second["resolution_s_median"] == (234000, 1, None)
    assert first["reply_business_s_median"] == (25200, 3, None)  # 3600, 25200, 100000
    assert second["reply_business_s_median"] == (3600, 1, None)
    assert first["speed_rating_mean"] == (3.5, 2, None)  # M2, M4
    assert second["speed_rating_mean"] == (4.0, 1, None)  # M11 (sent after the period)
    # The whole-period figures come with the series, unchanged.
    assert figures(report.model_dump(by_alias=True)["kpis"]) == EXPECTED


async def test_monthly_series(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    a, _ = await shops(client, engine)
    response = await client.get(
        f"/api/v1/shops/{a.id}/kpis",
        params={"from": "2026-03-23", "to": "2026-04-05", "granularity": "month"},
        headers=a.auth,
    )
    assert response.status_code == 200, response.text
    series = response.json()["series"]
    assert [p["period_start"] for p in series] == ["2026-03-01", "2026-04-01"]
    march, april = (figures(p["kpis"]) for p in series)
    assert march["pre_sale_contact_rate"] == (round(2 / 7, 6), 7, "bad")  # T1, T7 / 7 orders
    assert april["pre_sale_contact_rate"] == (round(1 / 3, 6), 3, "bad")  # T4 / O5, O12, O13
    assert march["return_rate"] == (round(2 / 3, 6), 3, None)  # O1, O4, O7 delivered
    assert april["return_rate"] == (0.0, 1, None)  # O9
    assert march["review_requests_sent"] == (3, 3, None)  # Q1, Q2, Q10
    assert april["review_rate"] == (1.0, 1, None)  # Q3, reviewed


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"from": "2026-04-05", "to": "2026-03-23"}, ["query", "to"]),
        ({"from": "2020-01-01", "to": "2026-01-01"}, ["query", "to"]),
        ({"from": "1900-01-01", "to": "1900-01-02"}, ["query", "from"]),
        ({"from": "2026-13-01", "to": "2026-12-01"}, ["query", "from"]),
        ({"to": "2026-12-01"}, ["query", "from"]),
        (
            {"from": "2026-03-01", "to": "2026-03-02", "granularity": "day"},
            ["query", "granularity"],
        ),
    ],
)
async def test_invalid_periods_are_refused_naming_the_field(
    client: httpx.AsyncClient, params: dict[str, str], loc: list[str]
) -> None:
    shop = await create_shop(client)
    response = await client.get(f"/api/v1/shops/{shop.id}/kpis", params=params, headers=shop.auth)
    assert_validation_problem(response, loc, source="query")


async def test_an_empty_period_has_null_values(client: httpx.AsyncClient) -> None:
    shop = await create_shop(client)
    response = await client.get(
        f"/api/v1/shops/{shop.id}/kpis",
        params={"from": "2026-01-01", "to": "2026-01-31", "granularity": "week"},
        headers=shop.auth,
    )
    body = response.json()
    assert response.status_code == 200, body
    assert all(k["value"] is None and k["count"] == 0 for k in body["kpis"].values())
    assert body["kpis"]["pre_sale_contact_rate"]["target"] == 0.1
    assert body["kpis"]["pre_sale_contact_rate"]["status"] is None
    assert [p["period_start"] for p in body["series"]] == [
        "2025-12-29", "2026-01-05", "2026-01-12", "2026-01-19", "2026-01-26"
    ]  # fmt: skip


@pytest.mark.postgres_only
async def test_the_passes_on_two_connections_give_the_same_report(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """The API's way (half the passes on a second connection) and one connection alone agree,
    whole period and weekly; with no second connection to spare it runs on one, unchanged."""
    a, _ = await shops(client, engine)
    for granularity in (None, "week"):
        async with engine.connect() as conn:
            alone = await service.report(conn, a.id, FROM, TO, now=NOW, granularity=granularity)
        async with engine.connect() as conn:
            both = await service.report(
                conn, a.id, FROM, TO, now=NOW, granularity=granularity, concurrent=True
            )
        assert both == alone
        assert figures(both.model_dump(by_alias=True)["kpis"]) == EXPECTED
    async with engine.connect() as conn:
        slots = service._spare(conn)
        count = service.spare_slots(engine.pool)
        assert slots is not None and count == service.SPARE_CONNECTIONS
        for _ in range(count):
            await slots.acquire()
        try:
            assert service._spare(conn) is None
            fallback = await service.report(conn, a.id, FROM, TO, now=NOW, concurrent=True)
        finally:
            for _ in range(count):
                slots.release()
    assert figures(fallback.model_dump(by_alias=True)["kpis"]) == EXPECTED


def test_a_small_pool_lends_no_second_connection() -> None:
    """Under 4 connections in the pool no report borrows one (two reports each holding one
    and waiting for a second could wait for each other); a pool without a size lends."""

    class Pool:
        def __init__(self, n: int) -> None:
            self.n = n

        def size(self) -> int:
            return self.n

    assert [service.spare_slots(Pool(n)) for n in (1, 3, 4, 7, 8, 10, 50)] == [0, 0, 1, 1, 2, 2, 2]
    assert service.spare_slots(object()) == service.SPARE_CONNECTIONS


@pytest.mark.postgres_only
async def test_a_failing_pass_on_the_second_connection_fails_the_report_and_frees_it(
    client: httpx.AsyncClient, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error in one lane reaches the caller once the other lane has ended; the second
    connection and its slot are given back, the caller's connection stays usable."""
    a, _ = await shops(client, engine)

    async def broken(conn: Any, p: Any) -> Any:
        await conn.exec_driver_sql("SELECT 1 / 0")

    _, second = service._lanes({name: False for name in service.PASS_COST_MS})
    name = next(n for n in second if n in service._SIMPLE_PASSES)  # on the second connection
    monkeypatch.setitem(service._SIMPLE_PASSES, name, broken)
    pool: Any = engine.pool
    async with engine.connect() as conn:
        await conn.exec_driver_sql("SELECT 1")
        held = pool.checkedout()
        with pytest.raises(DBAPIError, match="division by zero"):
            await service.report(conn, a.id, FROM, TO, now=NOW, concurrent=True)
        assert pool.checkedout() == held  # the second went back, the caller's is still usable
        assert (await conn.exec_driver_sql("SELECT 2")).scalar() == 2
        slots = service._spare(conn)
        assert slots is not None and slots._value == service.spare_slots(pool)


def test_every_kpi_is_fed_by_a_pass() -> None:
    """A KPI no pass names would be left out of a series restricted to it."""
    fed = set().union(*service.PASS_KPIS.values())
    assert fed == set(KPI_UNITS)


@pytest.mark.parametrize("granularity", ["week", "month"])
async def test_a_series_of_some_kpis_equals_those_of_the_full_series(
    client: httpx.AsyncClient, engine: AsyncEngine, granularity: str
) -> None:
    """The dashboard's charts ask for a few KPIs: the passes feeding none of them run for the
    whole period only. The whole period and those KPIs' series are the same as in the full
    report, and the series holds nothing else."""
    a, _ = await shops(client, engine)
    keys = ["review_requests_sent", "response_rate", "first_reply_business_s_median", "csat"]
    async with engine.connect() as conn:
        full = await service.report(conn, a.id, FROM, TO, now=NOW, granularity=granularity)
    async with engine.connect() as conn:
        some = await service.report(
            conn, a.id, FROM, TO, now=NOW, granularity=granularity, series_keys=keys,
            concurrent=True,
        )  # fmt: skip
    assert some.kpis == full.kpis
    assert full.series is not None and some.series is not None
    assert [p.period_start for p in some.series] == [p.period_start for p in full.series]
    for mine, theirs in zip(some.series, full.series, strict=True):
        assert list(mine.kpis) == [k for k in KPI_UNITS if k in keys]  # the report's order
        assert mine.kpis == {k: theirs.kpis[k] for k in keys}


async def test_the_api_s_series_parameter(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    a, _ = await shops(client, engine)
    base = f"/api/v1/shops/{a.id}/kpis"
    params = {"from": "2026-03-23", "to": "2026-04-05", "granularity": "week"}
    answer = await client.get(
        base, params=params | {"series": "csat, response_rate"}, headers=a.auth
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert all(list(p["kpis"]) == ["response_rate", "csat"] for p in body["series"])
    assert len(body["kpis"]) == len(KPI_UNITS)
    for bad in ("csat,nope", " , "):
        refused = await client.get(base, params=params | {"series": bad}, headers=a.auth)
        assert_validation_problem(refused, ["query", "series"], source="query")
