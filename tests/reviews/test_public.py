"""The public reviews API and the Google product-reviews feed: published reviews only, no
e-mail or last name anywhere, ETag round trips, the rate limit, the feed's XML and its memory."""

import gc
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.orders.models import Order
from app.ratelimit import RateLimiter
from app.requests.models import ReviewRequest
from app.reviews import feed, public_service
from app.reviews.models import Review, ReviewProduct
from tests.factories import create_shop, order_event, post_event
from tests.problems import assert_problem

T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
MUG = {"id": 12, "id_product_attribute": 0, "name": "Mug en grès", "reference": "MUG-01",
       "quantity": 1, "url": "https://shop.example/12-mug.html", "gtin": "3700000000012",
       "mpn": "MG-12", "brand": "Poterie & Fils"}  # fmt: skip
BOWL = {"id": 13, "id_product_attribute": 4, "name": "Bol <bleu>", "reference": "BOL-4",
        "quantity": 2, "url": None}  # fmt: skip


@dataclass
class Seed:
    order_id: int
    rating: int
    status: str = "published"
    comment: str | None = "Très bien"
    firstname: str | None = "Marie"
    lastname: str | None = "Dupontel"
    email: str = "marie.dupontel@example.fr"
    products: list[tuple[dict[str, Any], int]] = field(default_factory=list)
    reply: str | None = None


async def seed(engine: AsyncEngine, shop_id: str, seeds: list[Seed]) -> list[int]:
    """Orders, sent requests and reviews straight into the tables; returns the review ids."""
    ids = []
    async with engine.begin() as conn:
        for n, s in enumerate(seeds):
            at = T0 + timedelta(hours=n)
            await conn.execute(
                insert(Order).values(
                    shop_id=shop_id, order_id=s.order_id, reference=f"REF{s.order_id}",
                    email=s.email, email_normalized=s.email, firstname=s.firstname,
                    lastname=s.lastname, products=[p for p, _ in s.products], state_id=5,
                    history_id=1, state_at=at, ordered_at=at, created_at=at, updated_at=at,
                )
            )  # fmt: skip
            request_id = await conn.scalar(
                insert(ReviewRequest)
                .values(
                    shop_id=shop_id, order_id=s.order_id, email=s.email,
                    email_normalized=s.email, language="fr", status="sent", source="webhook",
                    trigger_history_id=1, trigger_at=at, due_at=at, sent_at=at,
                    created_at=at, updated_at=at,
                )
                .returning(ReviewRequest.id)
            )  # fmt: skip
            review_id = await conn.scalar(
                insert(Review)
                .values(
                    shop_id=shop_id, request_id=request_id, order_id=s.order_id,
                    rating=s.rating, comment=s.comment, status=s.status, language="fr",
                    reply=s.reply, replied_at=at if s.reply else None, purchased_at=at,
                    created_at=at, updated_at=at,
                )
                .returning(Review.id)
            )  # fmt: skip
            for product, rating in s.products:
                await conn.execute(
                    insert(ReviewProduct).values(
                        review_id=review_id, product_id=product["id"],
                        product_attribute_id=product["id_product_attribute"], shop_id=shop_id,
                        name=product["name"], rating=rating,
                    )
                )  # fmt: skip
            assert review_id is not None
            ids.append(int(review_id))
    return ids


@pytest.fixture
def fresh_limiter(app: FastAPI) -> Iterator[None]:
    """Each test starts with an empty rate limiter (the app serves the whole session)."""
    app.state.public_reviews_limiter = RateLimiter(10_000, 60)
    yield
    app.state.public_reviews_limiter = None


pytestmark = pytest.mark.usefixtures("fresh_limiter")


async def test_only_published_reviews_and_no_personal_data(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    shop = await create_shop(client)
    await seed(
        engine,
        shop.id,
        [
            Seed(1, 5, products=[(MUG, 4)], reply="Merci Marie !"),
            Seed(2, 2, status="pending", comment="en attente", firstname="Paul",
                 lastname="Martinez", email="paul.martinez@example.com"),
            Seed(3, 1, status="rejected", comment="rejeté"),
            Seed(4, 4, firstname="Jean", lastname="Valjeanson", email="jv@example.org",
                 products=[(BOWL, 3)]),
        ],
    )  # fmt: skip
    bodies = []
    response = await client.get(f"/public/v1/shops/{shop.id}/reviews")
    assert response.status_code == 200, response.text
    bodies.append(response.text)
    items = response.json()["items"]
    assert [i["rating"] for i in items] == [4, 5]
    assert [i["author"] for i in items] == ["Jean V.", "Marie D."]
    assert items[1]["reply"] == "Merci Marie !" and items[1]["replied_at"]
    assert items[1]["products"] == [
        {"product_id": 12, "product_attribute_id": 0, "name": "Mug en grès", "rating": 4}
    ]
    assert response.json()["next_cursor"] is None

    by_product = await client.get(f"/public/v1/shops/{shop.id}/reviews?product_id=13")
    bodies.append(by_product.text)
    assert [i["author"] for i in by_product.json()["items"]] == ["Jean V."]
    for path in ("summary", "summary?product_id=12"):
        bodies.append((await client.get(f"/public/v1/shops/{shop.id}/{path}")).text)
    feed_body = await client.get(f"/feeds/{shop.id}/google-product-reviews.xml")
    assert feed_body.status_code == 200
    bodies.append(feed_body.text)
    for body in bodies:
        for secret in ("@", "Dupontel", "Valjeanson", "Martinez", "Paul", "en attente", "rejeté"):
            assert secret not in body, (secret, body)


async def test_pages_follow_the_cursor(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    shop = await create_shop(client)
    await seed(engine, shop.id, [Seed(n, 1 + n % 5) for n in range(1, 26)])
    seen, cursor = [], None
    while True:
        suffix = f"?cursor={cursor}" if cursor else ""
        page = (await client.get(f"/public/v1/shops/{shop.id}/reviews{suffix}")).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 25 and seen == sorted(seen, reverse=True)
    bad = await client.get(f"/public/v1/shops/{shop.id}/reviews?cursor=nope")
    assert_problem(bad, 422)


async def test_unknown_shop_is_a_404_problem(client: httpx.AsyncClient) -> None:
    for path in (
        "/public/v1/shops/shp_doesnotexist0000000000/reviews",
        "/public/v1/shops/shp_doesnotexist0000000000/summary",
        "/public/v1/shops/not-an-id/reviews",
        "/feeds/shp_doesnotexist0000000000/google-product-reviews.xml",
    ):
        assert_problem(await client.get(path), 404)


async def test_etag_round_trip(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    shop = await create_shop(client)
    await seed(engine, shop.id, [Seed(1, 5)])
    for path in ("reviews", "summary"):
        url = f"/public/v1/shops/{shop.id}/{path}"
        first = await client.get(url)
        etag = first.headers["etag"]
        assert first.headers["cache-control"].startswith("public, max-age=")
        again = await client.get(url, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == etag
        stale = await client.get(url, headers={"If-None-Match": '"other"'})
        assert stale.status_code == 200
    # A new published review changes the answer, and so its ETag.
    before = (await client.get(f"/public/v1/shops/{shop.id}/reviews")).headers["etag"]
    await seed(engine, shop.id, [Seed(2, 3)])
    after = await client.get(
        f"/public/v1/shops/{shop.id}/reviews", headers={"If-None-Match": before}
    )
    assert after.status_code == 200 and after.headers["etag"] != before


async def test_rate_limit_is_a_429_problem(app: FastAPI, client: httpx.AsyncClient) -> None:
    shop = await create_shop(client)
    app.state.public_reviews_limiter = RateLimiter(3, 60)
    url = f"/public/v1/shops/{shop.id}/summary"
    for _ in range(3):
        assert (await client.get(url)).status_code == 200
    refused = await client.get(url)
    body = assert_problem(refused, 429)
    assert body["type"] == "https://relance.dev/problems/rate-limited"
    assert refused.headers["retry-after"] == "60"
    assert_problem(await client.get(f"/feeds/{shop.id}/google-product-reviews.xml"), 429)


async def test_summary_figures(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    shop = await create_shop(client)
    await seed(
        engine,
        shop.id,
        [
            Seed(1, 5, products=[(MUG, 4), (BOWL, 2)]),
            Seed(2, 4, products=[(MUG, 5)]),
            Seed(3, 4),
            Seed(4, 1, status="pending", products=[(MUG, 1)]),
            Seed(5, 2, products=[(MUG, 4)]),
        ],
    )
    shop_wide = (await client.get(f"/public/v1/shops/{shop.id}/summary")).json()
    # Published order ratings: 5, 4, 4, 2 -> 15 / 4.
    assert shop_wide == {
        "count": 4, "mean": 3.75, "distribution": {"1": 0, "2": 1, "3": 0, "4": 2, "5": 1}
    }  # fmt: skip
    mug = (await client.get(f"/public/v1/shops/{shop.id}/summary?product_id=12")).json()
    # The mug's published ratings: 4, 5, 4 -> 13 / 3 = 4.333.
    assert mug == {
        "count": 3, "mean": 4.33, "distribution": {"1": 0, "2": 0, "3": 0, "4": 2, "5": 1}
    }  # fmt: skip
    none = (await client.get(f"/public/v1/shops/{shop.id}/summary?product_id=99")).json()
    assert none == {"count": 0, "mean": None, "distribution": {str(v): 0 for v in range(1, 6)}}


async def test_feed_is_google_product_reviews_2_3(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    shop = await create_shop(client, name="Céramiques & <Co>")
    ids = await seed(
        engine,
        shop.id,
        [
            Seed(1, 5, comment='Parfait <b>"vraiment"</b> & solide', products=[(MUG, 4)]),
            Seed(2, 3, firstname=None, lastname=None, comment="Correct", products=[(BOWL, 2)]),
            Seed(3, 5, comment="Boutique au top"),  # an order rating alone: not a product review
            Seed(4, 4, status="pending", comment="Pas publié", products=[(MUG, 5)]),
        ],
    )
    response = await client.get(f"/feeds/{shop.id}/google-product-reviews.xml")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(response.content)
    assert root.tag == "feed" and root.findtext("version") == "2.3"
    assert root.findtext("publisher/name") == "Céramiques & <Co>"
    reviews = root.findall("reviews/review")
    assert len(reviews) == 2
    mug, bowl = reviews
    assert mug.findtext("review_id") == f"{ids[0]}-12-0"
    assert mug.findtext("reviewer/name") == "Marie D."
    assert mug.findtext("review_timestamp") == "2026-11-01T10:00:00Z"
    assert mug.findtext("content") == 'Parfait <b>"vraiment"</b> & solide'
    url = mug.find("review_url")
    assert url is not None and url.get("type") == "group"
    assert url.text == f"https://shop.example/12-mug.html#review-{ids[0]}"
    overall = mug.find("ratings/overall")
    assert overall is not None and overall.text == "4"
    assert (overall.get("min"), overall.get("max")) == ("1", "5")
    product = mug.find("products/product")
    assert product is not None
    assert product.findtext("product_ids/gtins/gtin") == "3700000000012"
    assert product.findtext("product_ids/mpns/mpn") == "MG-12"
    assert product.findtext("product_ids/skus/sku") == "MUG-01"
    assert product.findtext("product_ids/brands/brand") == "Poterie & Fils"
    assert product.findtext("product_name") == "Mug en grès"
    assert product.findtext("product_url") == "https://shop.example/12-mug.html"
    # Element order follows the schema's sequence.
    assert [e.tag for e in mug] == [
        "review_id", "reviewer", "review_timestamp", "content", "review_url", "ratings",
        "products",
    ]  # fmt: skip
    anonymous = bowl.find("reviewer/name")
    assert anonymous is not None and anonymous.get("is_anonymous") == "true"
    assert bowl.findtext("products/product/product_name") == "Bol <bleu>"
    assert bowl.findtext("products/product/product_ids/skus/sku") == "BOL-4"
    assert bowl.find("products/product/product_ids/gtins") is None
    assert "Boutique au top" not in response.text and "Pas publié" not in response.text
    assert "&lt;b&gt;&quot;vraiment&quot;" in response.text and "&amp;" in response.text


async def test_private_feed_needs_its_token(client: httpx.AsyncClient) -> None:
    token = "feed_Secret-token-0123456789"
    shop = await create_shop(client, review_feed_token=token)
    url = f"/feeds/{shop.id}/google-product-reviews.xml"
    assert_problem(await client.get(url), 404)
    assert_problem(await client.get(url, params={"token": token[:-1] + "x"}), 404)
    ok = await client.get(url, params={"token": token})
    assert ok.status_code == 200 and ET.fromstring(ok.content).tag == "feed"
    refused = await client.patch(
        f"/api/v1/shops/{shop.id}/settings", json={"review_feed_token": "short"}, headers=shop.auth
    )
    assert_problem(refused, 422)


async def test_product_identifiers_of_the_order_event_are_kept(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """The contract's optional `gtin`, `mpn`, `brand` of a product reach the stored order,
    where the feed reads them."""
    shop = await create_shop(client)
    event = order_event(1042, 5531, 5)
    event["data"]["products"][0].update(gtin="3700000000012", mpn="MG-12", brand="Poterie")
    assert (await post_event(client, shop, event)).status_code == 202
    async with engine.connect() as conn:
        products = await conn.scalar(select(Order.products).where(Order.shop_id == shop.id))
    assert products is not None
    assert {k: products[0][k] for k in ("gtin", "mpn", "brand", "reference")} == {
        "gtin": "3700000000012", "mpn": "MG-12", "brand": "Poterie", "reference": "MUG-01"
    }  # fmt: skip


def test_feed_text_is_escaped_and_valid_xml() -> None:
    assert feed._text('a\x00<b> & "c"\x1f') == "a&lt;b&gt; &amp; &quot;c&quot;"
    assert feed._text("Très bien") == "Très bien"


def test_display_name_is_first_name_and_initial() -> None:
    assert public_service.display_name("  Marie  Claire ", "dupont") == "Marie Claire D."
    assert public_service.display_name("Marie", None) == "Marie"
    assert public_service.display_name(None, "Dupont") is None
    assert public_service.display_name("", "") is None


HUGE = 100_000


def _peak_rss() -> int:
    """This process's peak resident memory (VmHWM), in bytes."""
    status = Path("/proc/self/status").read_text()
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    assert match is not None
    return int(match.group(1)) * 1024


def _reset_peak_rss() -> int:
    """Reset the peak to the current resident memory (Linux: `clear_refs` 5); returns it."""
    Path("/proc/self/clear_refs").write_text("5")
    return _peak_rss()


@pytest.mark.postgres_only
@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
async def test_feed_of_100000_reviews_streams_in_bounded_memory(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    shop = await create_shop(client)
    async with engine.begin() as conn:
        params = {"shop": shop.id, "n": HUGE, "at": T0}
        await conn.execute(
            text(
                "INSERT INTO orders (shop_id, order_id, reference, email, email_normalized, "
                "firstname, lastname, products, state_id, history_id, state_at, created_at, "
                "updated_at) SELECT :shop, g, 'R' || g, 'c' || g || '@example.fr', "
                "'c' || g || '@example.fr', 'Client' || g, 'Nom' || g, "
                "json_build_array(json_build_object('id', 12, 'id_product_attribute', 0, "
                "'name', 'Mug', 'reference', 'MUG-01', 'url', 'https://shop.example/12.html')), "
                "5, 1, :at, :at, :at FROM generate_series(1, :n) g"
            ),
            params,
        )
        await conn.execute(
            text(
                "INSERT INTO review_requests (public_id, shop_id, order_id, email, "
                "email_normalized, language, status, source, trigger_history_id, trigger_at, "
                "due_at, sent_at, created_at, updated_at) SELECT 'pub' || g, :shop, g, "
                "'c' || g || '@example.fr', 'c' || g || '@example.fr', 'fr', 'sent', 'webhook', "
                "1, :at, :at, :at, :at, :at FROM generate_series(1, :n) g"
            ),
            params,
        )
        await conn.execute(
            text(
                "INSERT INTO reviews (shop_id, request_id, order_id, rating, comment, status, "
                "language, created_at, updated_at) "
                "SELECT CAST(:shop AS varchar), r.id, r.order_id, 1 + r.order_id % 5, "
                "'Un commentaire assez long pour peser un peu & <plus>, "
                "numéro ' || r.order_id, 'published', 'fr', :at, :at "
                "FROM review_requests r WHERE r.shop_id = :shop"
            ),
            params,
        )
        await conn.execute(
            text(
                "INSERT INTO review_products (review_id, product_id, product_attribute_id, "
                "shop_id, name, rating) SELECT id, 12, 0, CAST(:shop AS varchar), 'Mug', "
                "rating FROM reviews WHERE shop_id = :shop"
            ),
            {"shop": shop.id},
        )
    async with engine.connect() as conn:
        shop_row = await public_service.shop(conn, shop.id)
    total = count = 0
    gc.collect()
    base = _reset_peak_rss()
    async for chunk in feed.generate(engine, shop_row, "https://relance.example"):
        total += len(chunk)
        count += chunk.count("<review>")
    grown = _peak_rss() - base
    assert count == HUGE
    # About 60 million characters of XML went out; never more than a page of it was held.
    assert total > 40_000_000, total
    assert grown < 20_000_000, (grown, total)
