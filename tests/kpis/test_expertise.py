"""The expertise level: the ladder's rules, the API on a fixture, the weekly snapshot job."""

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db import create_engine, utcnow
from app.kpis import jobs
from app.kpis.expertise import (
    AfterSales,
    Figures,
    add_months,
    assess,
    months_between,
    quality_window,
    ratings_needed,
)
from app.kpis.models import ExpertiseSnapshot
from app.requests.models import ReviewRequest
from app.reviews.models import Review
from app.shops.models import Shop
from app.shops.settings import ExpertiseLevel, KpiSettings, QualityWeights
from app.tickets.models import Ticket, TicketMessage
from tests.factories import ShopInfo, create_shop

LEVELS = KpiSettings().expertise_levels  # PrestaShop's ladder
WEIGHTS = QualityWeights()  # 0.25 each
AS_OF = date(2026, 3, 16)  # a Monday
START, END = quality_window(AS_OF)


def _after_sales(response_rate: float | None = None, **kw: Any) -> AfterSales:
    fields = {"reply_business_s_mean": None, "speed_rating_mean": None, "quality_rating_mean": None}
    return AfterSales(response_rate=response_rate, start=START, end=END, **(fields | kw))


def _at(rung: ExpertiseLevel, below: str | None = None) -> Figures:
    """Figures exactly on `rung`'s thresholds, or with one criterion just under it.
    After-sales quality comes from the response rate alone (the other parts have no figure,
    so the rate is the whole quality)."""
    since = add_months(AS_OF, -rung.months) + timedelta(days=below == "months")
    rating_sum = round(rung.rating_mean * 100) - (below == "rating_mean")  # mean t or t - 0.01
    positive = rung.positive_ratings - (below == "positive_ratings")
    quality = rung.after_sales_quality - 0.001 * (below == "after_sales_quality")
    return Figures(since, AS_OF, 100, rating_sum, positive, _after_sales(quality))


def _assess(figures: Figures, language: str = "en") -> Any:
    return assess(figures, LEVELS, WEIGHTS, language)


# --- Pure rules --------------------------------------------------------------------------------


@pytest.mark.parametrize("index", [0, 1, 2])
def test_a_level_is_reached_on_its_thresholds(index: int) -> None:
    result = _assess(_at(LEVELS[index]))
    assert result.level == LEVELS[index].name


@pytest.mark.parametrize("index", [0, 1, 2])
@pytest.mark.parametrize(
    "criterion", ["months", "rating_mean", "positive_ratings", "after_sales_quality"]
)
def test_just_under_one_threshold_keeps_the_level_below(index: int, criterion: str) -> None:
    # e.g. Captain with 5 months and 364 days, a 3.49 mean, 2 positive ratings or 84.9 %.
    result = _assess(_at(LEVELS[index], below=criterion))
    assert result.level == (LEVELS[index - 1].name if index else "none")
    assert result.next_level == LEVELS[index].name
    unmet = [c.name for c in result.criteria if not c.met]
    assert unmet == [{"months": "seniority_months"}.get(criterion, criterion)]


def test_criteria_are_against_the_next_level_and_the_top_has_nothing_to_improve() -> None:
    captain = _assess(_at(LEVELS[1]))
    assert captain.next_level == "superhero"
    assert [(c.name, c.threshold) for c in captain.criteria] == [
        ("seniority_months", 12),
        ("rating_mean", 4.0),
        ("positive_ratings", 5),
        ("after_sales_quality", 0.95),
    ]
    top = _assess(_at(LEVELS[2]))
    assert (top.level, top.next_level, top.to_improve) == ("superhero", None, [])
    assert all(c.met for c in top.criteria)
    assert [c.threshold for c in top.criteria] == [12, 4.0, 5, 0.95]


def test_a_new_shop_without_figures_has_no_level() -> None:
    result = _assess(Figures(AS_OF, AS_OF, 0, 0, 0, _after_sales()))
    assert (result.level, result.next_level) == ("none", "conqueror")
    assert [(c.value, c.met) for c in result.criteria] == [
        (0, False),
        (None, False),
        (0, False),
        (None, False),
    ]


def test_a_threshold_of_zero_asks_nothing() -> None:
    # A merchant's own first rung that only asks for seniority.
    rung = ExpertiseLevel(
        name="rookie", months=1, rating_mean=0, positive_ratings=0, after_sales_quality=0
    )
    figures = Figures(add_months(AS_OF, -1), AS_OF, 0, 0, 0, _after_sales())
    assert assess(figures, [rung], WEIGHTS, "en").level == "rookie"


def test_quality_weights_parts_with_a_figure_only() -> None:
    # response rate 0.8 -> 0.8; mean reply 48 business hours -> 24/48 = 0.5; no ratings:
    # (0.8 * 0.25 + 0.5 * 0.25) / 0.5 = 0.65. With speed 4/5 -> 0.75 as a third part:
    # (0.8 + 0.5 + 0.75) / 3 = 0.683.
    two = _after_sales(0.8, reply_business_s_mean=48 * 3600)
    assert _assess(Figures(AS_OF, AS_OF, 0, 0, 0, two)).quality == 0.65
    three = _after_sales(0.8, reply_business_s_mean=48 * 3600, speed_rating_mean=4.0)
    assert _assess(Figures(AS_OF, AS_OF, 0, 0, 0, three)).quality == 0.683
    # Weights of 1 on the ratings, which nobody gave: no quality at all.
    only_ratings = QualityWeights(
        response_rate=0, response_time=0, speed_rating=0.5, quality_rating=0.5
    )
    assert assess(Figures(AS_OF, AS_OF, 0, 0, 0, two), LEVELS, only_ratings, "en").quality is None


def test_dates() -> None:
    assert quality_window(date(2026, 3, 16)) == (date(2025, 9, 9), date(2026, 3, 8))
    assert quality_window(date(2026, 9, 7)) == (date(2026, 2, 28), date(2026, 8, 30))
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert months_between(date(2026, 1, 31), date(2026, 2, 27)) == 0
    assert months_between(date(2026, 1, 31), date(2026, 2, 28)) == 1
    assert months_between(date(2026, 3, 16), date(2026, 1, 1)) == 0
    # (2 * 2 + 5n) / (2 + n) >= 2.5 from n = 1; 3.5 from n = 2; never 5 with a 2 in.
    assert [ratings_needed(2, 4, t) for t in (2.0, 2.5, 3.5, 5.0)] == [0, 1, 2, None]


def test_what_to_improve_in_french_and_english() -> None:
    # Conqueror reached; toward Captain: 4 months (since 16 Nov 2025), mean 3.2 over 5
    # ratings (sum 16), 2 positive, quality = (response rate 0.9 + time 24/32 h = 0.75
    # + speed 3/5 -> 0.5 + quality 4.4/5 -> 0.85) / 4 = 3.0 / 4 = 0.75 -> under 85 %.
    after = _after_sales(
        0.9, reply_business_s_mean=32 * 3600, speed_rating_mean=3.0, quality_rating_mean=4.4
    )
    figures = Figures(date(2025, 11, 16), AS_OF, 5, 16, 2, after)
    fr = _assess(figures, "fr")
    assert (fr.level, fr.next_level, fr.quality) == ("conqueror", "captain", 0.75)
    assert fr.to_improve == [
        "Ancienneté : 4 mois sur les 6 demandés pour Capitaine ; atteinte le 16 mai 2026.",
        "Note moyenne de vos commandes : 3,2, Capitaine demande 3,5. Notes de 5 étoiles qu'il "
        "faudrait en plus : environ 1.",
        "Notes de 4 ou 5 étoiles : 2 sur les 3 demandées pour Capitaine ; encore 1 à obtenir.",
        "Qualité du SAV du 9 septembre 2025 au 8 mars 2026 : 75\xa0%, Capitaine demande 85\xa0%.",
        # Weakest part first: speed 50 %, response time 75 %; response rate 90 % and quality
        # 85 % are not under the threshold.
        "Vos clients notent la rapidité de vos réponses 3/5 : accusez réception de chaque "
        "message le jour même, avant même d'avoir la réponse complète.",
        "Répondez plus vite : vos réponses ont pris 32 heures ouvrées en moyenne, pour un "
        "objectif de 24 heures.",
    ]
    en = _assess(figures, "en")
    assert en.to_improve[0] == (
        "Seniority: 4 of the 6 months Captain asks for; reached on May 16, 2026."
    )
    assert en.to_improve[3] == (
        "After-sales quality from September 9, 2025 to March 8, 2026: 75%, Captain asks for 85%."
    )
    # A language Relance does not write falls back to English.
    assert _assess(figures, "pt").to_improve == en.to_improve


def test_what_to_improve_without_after_sales_figures_or_reply_ratings() -> None:
    none = _assess(Figures(AS_OF, AS_OF, 0, 0, 0, _after_sales()), "de")
    assert none.to_improve[-1] == (
        "Keine Kundendienstzahlen vom 9. September 2025 bis 8. März 2026 (Eroberer verlangt "
        "eine Qualität von 75\xa0%): erfassen Sie Kundennachrichten und Antworten in Relance."
    )
    unrated = _assess(Figures(AS_OF, AS_OF, 0, 0, 0, _after_sales(0.5)), "en")
    assert unrated.to_improve[-2:] == [
        "Answer every customer message that needs a reply: 50% were answered.",
        "No customer has rated your replies yet: put the rating links under your replies.",
    ]


# --- Fixture rows -------------------------------------------------------------------------------

PARIS = ZoneInfo("Europe/Paris")


async def _review(
    conn: AsyncConnection,
    shop_id: str,
    order_id: int,
    rating: int,
    at: datetime,
    *,
    dry_run: bool = False,
) -> None:
    request_id = await conn.scalar(
        insert(ReviewRequest)
        .values(
            shop_id=shop_id,
            order_id=order_id,
            email="a@example.fr",
            email_normalized="a@example.fr",
            language="fr",
            status="sent",
            source="webhook",
            trigger_history_id=order_id,
            trigger_at=at,
            due_at=at,
            sent_at=at,
            created_at=at,
            updated_at=at,
            dry_run=dry_run,
        )
        .returning(ReviewRequest.id)
    )
    await conn.execute(
        insert(Review).values(
            shop_id=shop_id,
            request_id=request_id,
            order_id=order_id,
            rating=rating,
            status="pending",
            language="fr",
            created_at=at,
            updated_at=at,
        )
    )


async def _ticket(conn: AsyncConnection, shop_id: str, key: str, first: datetime) -> int:
    day = first.astimezone(PARIS).date()
    ticket_id = await conn.scalar(
        insert(Ticket)
        .values(
            shop_id=shop_id,
            external_id=key,
            customer_email="a@example.fr",
            email_normalized="a@example.fr",
            category="after_sale",
            level=1,
            level_detected=False,
            status="open",
            created_at=first,
            updated_at=first,
            period_date=day,
            first_customer_at=first,
            first_needing_at=first,
            replies=1,
            exchanges=2,
            reopens=0,
        )
        .returning(Ticket.id)
    )
    assert ticket_id is not None
    return int(ticket_id)


async def _message(
    conn: AsyncConnection,
    shop_id: str,
    ticket_id: int,
    key: str,
    author: str,
    sent: datetime,
    *,
    answered_after_s: int | None = None,
    speed: int | None = None,
    quality: int | None = None,
) -> None:
    """A customer message needing a reply (answered `answered_after_s` business seconds later,
    its deadline 2 days after it) or an agent reply with the customer's ratings."""
    customer = author == "customer"
    answered = None if answered_after_s is None else sent + timedelta(seconds=answered_after_s)
    await conn.execute(
        insert(TicketMessage).values(
            shop_id=shop_id,
            ticket_id=ticket_id,
            external_id=key,
            author=author,
            public=True,
            automatic=False,
            sent_at=sent,
            period_date=sent.astimezone(PARIS).date(),
            needs_reply=customer,
            needs_reply_detected=False,
            deadline_at=sent + timedelta(days=2) if customer else None,
            answered_at=answered,
            reply_business_s=answered_after_s,
            reply_calendar_s=answered_after_s,
            speed_rating=speed,
            quality_rating=quality,
            rated_at=sent if speed else None,
            created_at=sent,
        )
    )


async def _fixture(engine: AsyncEngine, shop_id: str, now: datetime) -> None:
    """Ratings 5, 4, 3, 2 (mean 3.5, 2 positive) and a dry run's 1 that never counts. Thirty
    days ago, 4 messages needing a reply, 3 answered in 1 business hour, 1 never (its deadline
    passed): response rate 0.75, mean reply 3600 s -> time score 1; the reply rated speed 5
    (score 1) and quality 4 (0.75): quality (0.75 + 1 + 1 + 0.75) / 4 = 0.875. Three days ago
    (inside the 7 days left out) an unanswered message whose deadline passed: if it counted,
    the response rate would be 0.6."""
    async with engine.begin() as conn:
        for order_id, rating in enumerate([5, 4, 3, 2], start=1):
            await _review(conn, shop_id, order_id, rating, now - timedelta(days=10))
        await _review(conn, shop_id, 99, 1, now - timedelta(days=10), dry_run=True)
        old = now - timedelta(days=30)
        ticket = await _ticket(conn, shop_id, "t1", old)
        for i in range(3):
            await _message(conn, shop_id, ticket, f"c{i}", "customer", old, answered_after_s=3600)
        await _message(conn, shop_id, ticket, "c3", "customer", old)
        reply_at = old + timedelta(hours=1)
        await _message(conn, shop_id, ticket, "a1", "agent", reply_at, speed=5, quality=4)
        recent = now - timedelta(days=3)
        await _message(
            conn, shop_id, await _ticket(conn, shop_id, "t2", recent), "c4", "customer", recent
        )


# --- API ---------------------------------------------------------------------------------------


async def test_the_level_if_computed_now(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    now = utcnow()
    today = now.astimezone(PARIS).date()
    since = add_months(today, -7)
    shop = await create_shop(client, kpis={"seller_since": since.isoformat()})
    await _fixture(engine, shop.id, now)

    response = await client.get(f"/api/v1/shops/{shop.id}/expertise", headers=shop.auth)

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["level"], body["next_level"]) == ("conqueror", "captain")
    assert body["criteria"] == [
        {"name": "seniority_months", "value": 7, "threshold": 6, "met": True},
        {"name": "rating_mean", "value": 3.5, "threshold": 3.5, "met": True},
        {"name": "positive_ratings", "value": 2, "threshold": 3, "met": False},
        {"name": "after_sales_quality", "value": 0.875, "threshold": 0.85, "met": True},
    ]
    assert body["to_improve"] == [
        "Notes de 4 ou 5 étoiles : 2 sur les 3 demandées pour Capitaine ; encore 1 à obtenir."
    ]
    start, end = quality_window(today)
    assert body["after_sales"] == {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "score": 0.875,
        "parts": [
            {"name": "response_rate", "value": 0.75, "score": 0.75, "weight": 0.25},
            {"name": "response_time", "value": 3600, "score": 1.0, "weight": 0.25},
            {"name": "speed_rating", "value": 5.0, "score": 1.0, "weight": 0.25},
            {"name": "quality_rating", "value": 4.0, "score": 0.75, "weight": 0.25},
        ],
    }
    assert datetime.fromisoformat(body["as_of"]) >= now

    other = await create_shop(client, name="Other")
    refused = await client.get(f"/api/v1/shops/{shop.id}/expertise", headers=other.auth)
    assert refused.status_code == 404


async def test_history_lists_the_snapshots(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    now = utcnow()
    shop = await create_shop(client)
    await _fixture(engine, shop.id, now)
    stats = await jobs.snapshot_due(engine, now)
    assert (stats.stored, stats.failed) == (1, 0)

    response = await client.get(f"/api/v1/shops/{shop.id}/expertise/history", headers=shop.auth)

    assert response.status_code == 200, response.text
    [item] = response.json()["items"]
    local = now.astimezone(PARIS).date()
    monday = local - timedelta(days=local.weekday())
    assert item["week_start"] == monday.isoformat()
    assert datetime.fromisoformat(item["as_of"]) == datetime.combine(
        monday, datetime.min.time(), PARIS
    )
    # Created today: seniority 0 months, so no level whatever the ratings.
    assert item["level"] == "none"
    assert item["criteria"][1] == {
        "name": "rating_mean",
        "value": 3.5,
        "threshold": 2.5,
        "met": True,
    }
    too_long = await client.get(
        f"/api/v1/shops/{shop.id}/expertise/history?limit=1000", headers=shop.auth
    )
    assert too_long.status_code == 422
    assert too_long.json()["errors"][0]["loc"] == ["query", "limit"]


# --- The weekly job ----------------------------------------------------------------------------


async def _shop_in(client: httpx.AsyncClient, zone: str) -> ShopInfo:
    return await create_shop(client, name=zone, timezone=zone)


async def _snapshots(engine: AsyncEngine) -> list[tuple[str, date, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(
                ExpertiseSnapshot.shop_id,
                ExpertiseSnapshot.week_start,
                ExpertiseSnapshot.data["as_of"].as_string(),
            ).order_by(ExpertiseSnapshot.id)
        )
        return [(r[0], r[1], r[2]) for r in rows]


async def test_one_snapshot_per_local_monday(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    auckland = await _shop_in(client, "Pacific/Auckland")
    los_angeles = await _shop_in(client, "America/Los_Angeles")
    # Sunday 15 March 2026, 12:00 UTC: Monday 16 01:00 in Auckland (UTC+13), Sunday 05:00 in
    # Los Angeles (UTC-7): Auckland's week of the 16th, Los Angeles' week of the 9th.
    sunday = datetime(2026, 3, 15, 12, tzinfo=UTC)

    first = await jobs.snapshot_due(engine, sunday)
    again = await jobs.snapshot_due(engine, sunday + timedelta(minutes=59))

    assert (first.stored, again.stored, again.skipped) == (2, 0, 0)
    assert sorted(await _snapshots(engine)) == sorted(
        [
            (auckland.id, date(2026, 3, 16), "2026-03-15T11:00:00+00:00"),  # Mon 00:00 NZDT
            (los_angeles.id, date(2026, 3, 9), "2026-03-09T07:00:00+00:00"),  # Mon 00:00 PDT
        ]
    )

    # Monday 16, 08:00 UTC: 01:00 in Los Angeles, its new week; Auckland has its own.
    monday = await jobs.snapshot_due(engine, datetime(2026, 3, 16, 8, tzinfo=UTC))
    assert monday.stored == 1
    assert (await _snapshots(engine))[-1][:2] == (los_angeles.id, date(2026, 3, 16))


async def test_a_failing_shop_fails_alone(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    broken = await create_shop(client, name="Broken")
    fine = await create_shop(client, name="Fine")
    async with engine.begin() as conn:  # settings that no longer validate
        await conn.execute(
            update(Shop)
            .where(Shop.id == broken.id)
            .values(settings={"delay": "soon"}, updated_at=utcnow() + timedelta(seconds=1))
        )

    stats = await jobs.snapshot_due(engine, utcnow())

    assert (stats.stored, stats.failed) == (1, 1)
    assert [s[0] for s in await _snapshots(engine)] == [fine.id]


@pytest.mark.postgres_only
async def test_two_jobs_at_once_store_one_snapshot_per_shop(
    client: httpx.AsyncClient, engine: AsyncEngine, database_url: str
) -> None:
    shops = [await create_shop(client, name=f"Shop {i}") for i in range(4)]
    now = utcnow()
    other = create_engine(database_url)
    try:
        results = await asyncio.gather(
            jobs.snapshot_due(engine, now), jobs.snapshot_due(other, now)
        )
    finally:
        await other.dispose()

    assert sum(r.stored for r in results) == len(shops)
    assert sum(r.failed for r in results) == 0
    async with engine.connect() as conn:
        count = await conn.scalar(select(func.count()).select_from(ExpertiseSnapshot))
    assert count == len(shops)


@pytest.mark.postgres_only
async def test_a_shop_locked_by_another_replica_is_left_to_it(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    shop = await create_shop(client)
    key = f"relance.expertise:{shop.id}"
    async with engine.begin() as holder:  # another replica computing this shop's snapshot
        await holder.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": key}
        )
        assert await jobs.snapshot_shop(engine, shop.id, utcnow()) is False
    assert await _snapshots(engine) == []
    assert await jobs.snapshot_shop(engine, shop.id, utcnow()) is True
