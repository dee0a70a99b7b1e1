"""The dashboard over HTTP: sign-in and its cookie, CSRF, expiry, tenant isolation, every page
with seeded data, and the overview's figures against the KPI API's."""

import json
import re
from datetime import UTC, date, datetime, timedelta
from html import unescape
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.dashboard import session as sessions
from app.dashboard.router import SIGN_INS_PER_MINUTE
from app.kpis import expertise_service
from app.shops.models import ShopApiKey
from tests.dashboard.conftest import Seed, client_of, csrf_of, sign_in, signed_in
from tests.factories import ADMIN, create_shop


def _cookie_header(response: httpx.Response, name: str) -> str:
    found = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}=")]
    assert len(found) == 1, response.headers.get_list("set-cookie")
    return found[0]


async def test_sign_in_opens_a_secure_session_and_sign_out_ends_it(
    dash: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await create_shop(client)
    first = await dash.get("/dashboard")
    assert first.status_code == 303 and first.headers["location"] == "/dashboard/login"
    login = await dash.get("/dashboard/login", headers={"Accept-Language": "de-DE,de;q=0.9"})
    assert 'lang="de"' in login.text and "API-Schlüssel" in login.text
    assert 'for="api_key"' in login.text  # a labelled field

    answer = await sign_in(dash, shop.api_key)
    assert answer.status_code == 303, answer.text
    cookie = _cookie_header(answer, sessions.COOKIE).lower()
    for attribute in ("httponly", "samesite=lax", "secure", "path=/dashboard", "max-age=28800"):
        assert attribute in cookie, cookie

    page = await dash.get("/dashboard")
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert 'lang="fr"' in page.text and "Ma Boutique" in page.text
    assert "Vue d'ensemble" in unescape(page.text)

    out = await dash.post("/dashboard/logout", data={"csrf": csrf_of(page.text)})
    assert out.status_code == 303 and out.headers["location"].startswith("/dashboard/login")
    assert (await dash.get("/dashboard")).status_code == 303


async def test_a_key_that_opens_nothing_gets_the_same_answer_as_a_wrong_one(
    dash: httpx.AsyncClient, client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    kept = await create_shop(client, "Gardée")
    expired = await create_shop(client, "Expirée")
    erased = await create_shop(client, "Effacée")
    async with engine.begin() as conn:
        await conn.execute(
            update(ShopApiKey)
            .where(ShopApiKey.shop_id == expired.id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    gone = await client.delete(f"/api/v1/shops/{erased.id}?confirm={erased.id}", headers=ADMIN)
    assert gone.status_code == 204
    answers = [
        await sign_in(dash, key)
        for key in ("rlk_" + "x" * 43, expired.api_key, erased.api_key, kept.id, "")
    ]
    assert {a.status_code for a in answers} == {401}
    assert len({a.text for a in answers}) == 1
    assert "n'ouvre aucune boutique" not in answers[0].text  # the visitor's language: English
    assert "does not open any shop" in answers[0].text
    assert sessions.COOKIE not in dash.cookies


async def test_a_session_ends_with_its_key_its_expiry_or_a_changed_signature(
    dash: httpx.AsyncClient, client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    shop = await create_shop(client)
    await signed_in(dash, shop.api_key)
    cookie = dash.cookies[sessions.COOKIE]
    now = datetime.now(UTC)
    found = sessions.decode(settings.secret_key, cookie, now)
    assert found is not None and found.shop_id == shop.id
    assert found.expires_at - now.timestamp() > 7.9 * 3600

    stale = sessions.Session(found.shop_id, found.key_id, int(now.timestamp()) - 1, found.nonce)
    forged = sessions.encode("another-secret", found)
    tampered = cookie.replace(shop.id, "shp_other", 1)
    for value in (sessions.encode(settings.secret_key, stale), forged, tampered, "garbage"):
        dash.cookies.set(sessions.COOKIE, value, domain="relance.test", path="/dashboard")
        answer = await dash.get("/dashboard/reviews")
        assert answer.status_code == 303 and answer.headers["location"] == "/dashboard/login"

    dash.cookies.set(sessions.COOKIE, cookie, domain="relance.test", path="/dashboard")
    assert (await dash.get("/dashboard/reviews")).status_code == 200
    rotated = await client.post(
        f"/api/v1/shops/{shop.id}/api-keys/rotate", json={"previous_valid_for": "PT1S"},
        headers=shop.auth,
    )  # fmt: skip
    assert rotated.status_code == 200
    async with engine.begin() as conn:
        await conn.execute(
            update(ShopApiKey).where(ShopApiKey.id == found.key_id).values(expires_at=now)
        )
    assert (await dash.get("/dashboard/reviews")).status_code == 303


async def test_forms_without_their_csrf_token_are_refused(
    dash: httpx.AsyncClient, client: httpx.AsyncClient, seeded: Seed
) -> None:
    shop = seeded.shop
    page = await dash.get("/dashboard/login")
    refused = await dash.post("/dashboard/login", data={"api_key": shop.api_key})
    assert refused.status_code == 403 and "text/html" in refused.headers["content-type"]
    wrong = await dash.post("/dashboard/login", data={"api_key": shop.api_key, "csrf": "x"})
    assert wrong.status_code == 403
    assert sessions.COOKIE not in dash.cookies
    await signed_in(dash, shop.api_key)
    assert csrf_of(page.text)  # the sign-in form carries one

    before = (await client.get(f"/api/v1/shops/{shop.id}/settings", headers=shop.auth)).json()
    posts = [
        ("/dashboard/settings", {"delay": "P5D"}),
        (f"/dashboard/reviews/{seeded.review_id}", {"status": "published"}),
        (f"/dashboard/requests/{seeded.reviewed_request}/cancel", {}),
        ("/dashboard/logout", {}),
    ]
    for path, data in posts:
        for token in (None, "not-the-token"):
            sent = data if token is None else {**data, "csrf": token}
            answer = await dash.post(path, data=sent)
            assert answer.status_code == 403, (path, answer.text)
            assert "Formulaire expiré" in answer.text
    after = (await client.get(f"/api/v1/shops/{shop.id}/settings", headers=shop.auth)).json()
    assert after == before
    reviews = await client.get(f"/api/v1/shops/{shop.id}/reviews", headers=shop.auth)
    assert reviews.json()["items"][0]["status"] == "pending"
    assert (await dash.get("/dashboard")).status_code == 200  # still signed in


async def test_sign_in_attempts_are_rate_limited_per_address(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    shop = await create_shop(client)
    async with client_of(app) as dash:
        for _ in range(SIGN_INS_PER_MINUTE):
            assert (await sign_in(dash, "rlk_wrong")).status_code == 401
        blocked = await sign_in(dash, shop.api_key)
        assert blocked.status_code == 429 and "Too many" in blocked.text
    async with client_of(app) as elsewhere:
        await signed_in(elsewhere, shop.api_key)


async def test_a_shop_sees_only_its_own_data(
    dash: httpx.AsyncClient, client: httpx.AsyncClient, seeded: Seed
) -> None:
    other = await create_shop(client, "Autre Boutique")
    await signed_in(dash, other.api_key)
    for path in (
        f"/dashboard/requests/{seeded.reviewed_request}",
        f"/dashboard/tickets/{seeded.ticket_id}",
        "/dashboard/requests/abc",
        "/dashboard/nothing-here",
    ):
        answer = await dash.get(path)
        assert answer.status_code == 404, path
        assert answer.headers["content-type"].startswith("text/html"), path
        assert "Page introuvable" in answer.text
    page = await dash.get("/dashboard/requests")
    token = csrf_of(page.text)
    moderated = await dash.post(
        f"/dashboard/reviews/{seeded.review_id}", data={"csrf": token, "status": "published"}
    )
    assert moderated.status_code == 404
    cancelled = await dash.post(
        f"/dashboard/requests/{seeded.reviewed_request}/cancel", data={"csrf": token}
    )
    assert cancelled.status_code == 404
    for path in ("/dashboard/requests", "/dashboard/reviews", "/dashboard/tickets"):
        text = (await dash.get(path)).text
        assert "marie@example.fr" not in text and "Très beau mug" not in text, path
    export = await dash.get("/dashboard/reviews/export.csv")
    assert export.text.strip().count("\n") == 0  # the header alone
    shop = seeded.shop
    reviews = await client.get(f"/api/v1/shops/{shop.id}/reviews", headers=shop.auth)
    assert reviews.json()["items"][0]["status"] == "pending"


async def test_every_page_shows_the_seeded_data(
    dash: httpx.AsyncClient, client: httpx.AsyncClient, seeded: Seed
) -> None:
    await signed_in(dash, seeded.shop.api_key)
    pages: dict[str, list[str]] = {
        "/dashboard": ["Taux d'avis", "Envoyées", "Commande annulée", "Niveau d'expertise"],
        "/dashboard?period=3m": ["3 derniers mois"],
        "/dashboard?period=custom&from=2026-13-01&to=x": ["n'est pas valable"],
        "/dashboard/requests": ["marie@example.fr", "paul@example.fr", "Annulée"],
        "/dashboard/requests?status=cancelled": ["Commande annulée"],
        f"/dashboard/requests/{seeded.reviewed_request}": ["Historique", "Premier e-mail"],
        "/dashboard/reviews": ["Très beau mug.", "Exporter en CSV", "En attente"],
        "/dashboard/reviews?rating=5&status=pending": ["Très beau mug."],
        "/dashboard/tickets": ["Colis abîmé", "Après-vente"],
        "/dashboard/tickets?level=2&status=closed": ["Rien à afficher."],
        f"/dashboard/tickets/{seeded.ticket_id}": ["mon mug est arrivé cassé", "Conseiller"],
        "/dashboard/settings": ["Délai après le déclenchement", "P2D"],
        "/dashboard/settings/preview?kind=request&language=fr": ["Objet", "Envoyer le test"],
    }
    for path, expected in pages.items():
        answer = await dash.get(path)
        assert answer.status_code == 200, (path, answer.text[:500])
        text = unescape(answer.text)
        for snippet in expected:
            assert snippet in text, (path, snippet)
    assert "Très beau mug." not in (await dash.get("/dashboard/reviews?rating=1")).text
    listed = (await dash.get("/dashboard/requests?status=cancelled")).text
    assert "marie@example.fr" not in listed
    frame = await dash.get("/dashboard/settings/preview.html?kind=request&language=fr")
    assert frame.status_code == 200 and "sandbox" in frame.headers["content-security-policy"]
    export = await dash.get("/dashboard/reviews/export.csv?status=pending")
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    assert export.text.splitlines()[0].startswith("id,order_id,rating,comment")
    assert "Très beau mug." in export.text
    static = await dash.get("/dashboard/static/vendor/chartjs/chart.umd.min.js")
    assert static.status_code == 200 and "Chart.js v4" in static.text[:200]
    assert (await dash.get("/dashboard/static/../router.py")).status_code == 404
    document = (await client.get("/openapi.json")).json()
    assert not [p for p in document["paths"] if p.startswith("/dashboard")]


def _cards(html: str) -> dict[str, dict[str, str]]:
    found = {}
    for attrs in re.findall(r"<article class=\"kpi[^\"]*\"([^>]*)>", html):
        fields = dict(re.findall(r'data-([a-z]+)="([^"]*)"', attrs))
        found[fields.pop("kpi")] = fields
    return found


def _number(text: str) -> float | None:
    return None if text == "" else float(text)


async def test_the_cards_and_charts_are_the_kpi_apis_figures(
    dash: httpx.AsyncClient, client: httpx.AsyncClient, seeded: Seed
) -> None:
    shop = seeded.shop
    patched = await client.patch(
        f"/api/v1/shops/{shop.id}/settings",
        json={"kpis": {"targets": {"review_rate": 0.4, "response_rate": 0.9}}},
        headers=shop.auth,
    )
    assert patched.status_code == 200, patched.text
    await signed_in(dash, shop.api_key)
    today = datetime.now(ZoneInfo("Europe/Paris")).date()
    start = today - timedelta(days=20)
    period = {"from": start.isoformat(), "to": today.isoformat()}
    page = await dash.get("/dashboard", params={"period": "custom", **period})
    assert page.status_code == 200, page.text
    api = await client.get(
        f"/api/v1/shops/{shop.id}/kpis", params={**period, "granularity": "week"},
        headers=shop.auth,
    )  # fmt: skip
    report: dict[str, Any] = api.json()

    cards = _cards(page.text)
    assert set(cards) == set(report["kpis"])
    for key, kpi in report["kpis"].items():
        card = cards[key]
        assert _number(card["value"]) == kpi["value"], key
        assert int(card["count"]) == kpi["count"], key
        assert _number(card["target"]) == kpi["target"], key
        assert (card["status"] or None) == kpi["status"], key
    assert report["kpis"]["review_requests_sent"]["count"] == 2
    assert report["kpis"]["review_rate"]["value"] == 0.5
    assert report["kpis"]["review_rate"]["status"] == "ok"
    assert 'class="kpi status-ok" data-kpi="review_rate"' in page.text

    raw = re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', page.text)
    assert raw is not None
    charts = {c["key"]: c for c in json.loads(raw.group(1))}
    weeks = [p["period_start"] for p in report["series"]]
    assert len(weeks) >= 3 and weeks[-1] <= today.isoformat()
    for key, chart in charts.items():
        assert chart["labels"] == weeks, key
        series = [p["kpis"][key] for p in report["series"]]
        assert chart["counts"] == [s["count"] for s in series], key
        unit = report["kpis"][key]["unit"]
        scale = {"ratio": 100.0, "seconds": 1 / 3600}.get(unit, 1.0)
        expected = [None if s["value"] is None else round(s["value"] * scale, 2) for s in series]
        assert chart["values"] == expected, key
    assert charts["review_rate"]["values"][-1] == 50.0 and charts["review_rate"]["target"] == 40.0
    assert charts["csat"]["empty"] and 'id="chart-csat"' in page.text
    assert "Pas encore de données sur cette période" in page.text

    funnel = dict(re.findall(r'data-step="([a-z]+)"><span>[^<]*</span> <strong>(\d+)', page.text))
    assert funnel == {"sent": "2", "clicked": "1", "reviewed": "1"}
    assert 'data-reason="order_cancelled"' in page.text


async def test_the_overview_shows_the_latest_stored_expertise_snapshot(
    dash: httpx.AsyncClient, client: httpx.AsyncClient, engine: AsyncEngine, seeded: Seed
) -> None:
    """Before the first Monday snapshot the level is computed live; once there is one, the
    overview shows the latest stored one and its Monday, not a live computation."""
    shop = seeded.shop
    await signed_in(dash, shop.api_key)
    before = unescape((await dash.get("/dashboard")).text)
    assert 'data-expertise-as-of="live"' in before
    assert "Calculé à l'instant" in before

    live = (await client.get(f"/api/v1/shops/{shop.id}/expertise", headers=shop.auth)).json()
    stored = {**live, "level": "captain", "next_level": "conqueror"}
    stored["to_improve"] = ["Conseil tiré du relevé du lundi."]
    older = {**stored, "level": "conqueror", "to_improve": ["Conseil d'un relevé plus ancien."]}
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        # The newest Monday is stored first: the latest week wins, not the latest row.
        for monday, data in ((date(2026, 11, 23), stored), (date(2026, 11, 16), older)):
            assert await expertise_service.store_snapshot(conn, shop.id, monday, data, now)

    page = unescape((await dash.get("/dashboard")).text)
    assert 'data-expertise-as-of="snapshot"' in page
    assert "Au lundi 23 novembre 2026 (relevé hebdomadaire)" in page
    assert 'data-level="captain"' in page and "Capitaine" in page
    assert "Conseil tiré du relevé du lundi." in page
    assert "relevé plus ancien" not in page


async def test_pages_speak_the_shops_language(app: FastAPI, client: httpx.AsyncClient) -> None:
    words = {
        "en": "Review requests",
        "it": "Richieste di recensione",
        "es": "Solicitudes de opinión",
        "de": "Bewertungsanfragen",
        "fr": "Demandes d'avis",
    }
    for language, word in words.items():
        shop = await create_shop(client, f"Shop {language}", default_language=language)
        async with client_of(app) as own:
            await signed_in(own, shop.api_key)
            page = await own.get("/dashboard/requests")
            assert f'lang="{language}"' in page.text and word in unescape(page.text), language
            missing = await own.get("/dashboard/tickets/999999")
            assert missing.status_code == 404 and f'lang="{language}"' in missing.text


def test_a_session_cookie_round_trips_and_expires() -> None:
    now = datetime(2026, 5, 4, 12, tzinfo=UTC)
    made = sessions.new_session("shp_abc", 7, now)
    cookie = sessions.encode("k", made)
    assert sessions.decode("k", cookie, now) == made
    assert sessions.decode("k", cookie, now + sessions.TTL) is None
    assert sessions.decode("other", cookie, now) is None
    token = sessions.csrf_token("k", made.nonce)
    assert sessions.csrf_matches("k", made.nonce, token)
    assert not sessions.csrf_matches("k", sessions.new_nonce(), token)
