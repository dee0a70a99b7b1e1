"""The dashboard in a real browser: headless Chromium (Debian's package, driven by Playwright)
against a running `relance serve` that sent two e-mails to an aiosmtpd sink. A merchant is
refused with a wrong key, signs in, sees the figures on the cards and a drawn chart, changes a
setting (seen through the API), has a form without its CSRF token refused, moderates a review
and opens a request's timeline. Screenshots at a phone and a desktop width go to
tests/artifacts/ (git-ignored); RELANCE_UPDATE_SCREENSHOT=1 also rewrites docs/dashboard.png.

Without /usr/bin/chromium the test is skipped with one line, unless RELANCE_TEST_REQUIRE_BROWSER=1
(as in CI), which makes that a failure. No browser is ever downloaded."""

import asyncio
import os
import re
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, FloatRect, Page, expect

from tests.factories import order_event, signed
from tests.reviews.test_browser import (  # noqa: F401 (fixtures)
    ARTIFACTS,
    DESKTOP,
    PHONE,
    Server,
    browser,
    chromium,
    eventually,
    server,
    sink,
)
from tests.smtp_sink import SinkHandler
from tests.test_end_to_end import tail

pytestmark = pytest.mark.slow

DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"
BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"


async def _seed(api: httpx.AsyncClient, admin_token: str, handler: SinkHandler) -> dict[str, str]:
    """A French shop whose two e-mails went out, one of them reviewed, through the API."""
    created = await api.post(
        "/api/v1/shops",
        json={"name": "La Poterie de Marie", "timezone": "Europe/Paris", "language": "fr"},
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert created.status_code == 201, created.text
    shop = created.json()
    auth = {"Authorization": f"Bearer {shop['api_key']}"}
    patched = await api.patch(
        f"/api/v1/shops/{shop['id']}/settings", json={"delay": "PT1S"}, headers=auth
    )
    assert patched.status_code == 200, patched.text
    for order_id, email in ((1, "marie@example.fr"), (2, "paul@example.fr")):
        body, headers = signed(shop["webhook_secret"], order_event(order_id, 1, 5, email=email))
        posted = await api.post(f"/webhooks/prestashop/{shop['id']}", content=body, headers=headers)
        assert posted.status_code == 202, posted.text
    await eventually(lambda: len(handler.messages) == 2, "two e-mails at the SMTP sink")
    # The sink has an e-mail before the worker records it as sent: wait for that commit.
    for _ in range(100):
        listed = await api.get(
            f"/api/v1/shops/{shop['id']}/review-requests?status=sent", headers=auth
        )
        if len(listed.json()["items"]) == 2:
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("the two e-mails were never recorded as sent")
    message = next(m for m in handler.messages if m["To"] == "marie@example.fr")
    part = message.get_body(("html",))
    assert part is not None
    link = re.findall(r'href="[^"]*(/r/[^"?]+)', part.get_content())[0]
    review = await api.post(link, data={"rating": "5", "comment": "Très beau mug."})
    assert review.status_code == 200, review.text
    return {"id": shop["id"], "key": shop["api_key"]}


async def painted(page: Page, canvas_id: str, least: int) -> None:
    """Wait until at least `least` pixels of a canvas are painted (Chart.js redraws after its
    first resize, in an animation frame)."""
    await page.wait_for_function(
        """([id, least]) => { const c = document.getElementById(id);
             const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
             let n = 0; for (let i = 3; i < d.length; i += 4) { if (d[i]) n++; }
             return n >= least; }""",
        arg=[canvas_id, least],
        timeout=10_000,
    )


async def _screenshots(page: Page, name: str) -> None:
    for width, size in (("desktop", DESKTOP), ("phone", PHONE)):
        await page.set_viewport_size(size)
        overflow = await page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name} at {width} width: {overflow} px wider than the window"
        await page.screenshot(path=ARTIFACTS / f"dashboard-{name}-{width}.png", full_page=True)
        if (
            name == "overview"
            and width == "desktop"
            and os.environ.get("RELANCE_UPDATE_SCREENSHOT") == "1"
        ):
            clip = FloatRect(x=0, y=0, width=DESKTOP["width"], height=1500)
            await page.screenshot(path=DOCS_SCREENSHOT, full_page=True, clip=clip)


async def test_a_merchant_uses_the_dashboard_in_chromium(
    browser: Browser,  # noqa: F811
    server: Server,  # noqa: F811
    sink: tuple[SinkHandler, int],  # noqa: F811
) -> None:
    handler, _ = sink
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with httpx.AsyncClient(
        base_url=server.base_url, timeout=10, headers={"User-Agent": BROWSER_UA}
    ) as api:
        shop = await _seed(api, server.admin_token, handler)
        auth = {"Authorization": f"Bearer {shop['key']}"}
        context = await browser.new_context(viewport=DESKTOP, locale="fr-FR")
        problems: list[str] = []
        page = await context.new_page()
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        # What the test provokes on purpose: a wrong key (401), a form without its token (403),
        # a setting refused (422). Anything else the browser reports is a problem.
        expected = re.compile(r"status of (401|403|422)")
        base = server.base_url

        await page.goto(f"{base}/dashboard")
        await expect(page).to_have_url(f"{base}/dashboard/login")
        await page.get_by_label("La clé d'API de votre boutique").fill("rlk_not-a-key")
        await page.get_by_role("button", name="Se connecter").click()
        await expect(page.get_by_role("alert")).to_contain_text("n'ouvre aucune boutique")
        await page.get_by_label("La clé d'API de votre boutique").fill(shop["key"])
        await page.get_by_role("button", name="Se connecter").click()
        await expect(page).to_have_url(f"{base}/dashboard")

        sent = page.locator('[data-kpi="review_requests_sent"] .value')
        await expect(sent).to_have_text("2")
        await expect(page.locator('[data-kpi="review_rate"] .value')).to_contain_text("50")
        await expect(page.locator('[data-step="reviewed"] strong')).to_have_text("1")
        await painted(page, "chart-review_requests_sent", 500)
        await painted(page, "chart-csat", 1)  # no data: the axes are drawn all the same
        await expect(page.locator('[data-chart="csat"] .empty')).to_be_visible()
        await _screenshots(page, "overview")
        await page.set_viewport_size(DESKTOP)

        await page.get_by_role("link", name="Réglages").click()
        await page.get_by_label("Délai après le déclenchement").fill("P4D")
        await page.get_by_role("button", name="Enregistrer les réglages").click()
        await expect(page.get_by_role("status")).to_contain_text("Réglages enregistrés")
        read = await api.get(f"/api/v1/shops/{shop['id']}/settings", headers=auth)
        assert read.json()["delay"] == "P4D"

        await page.get_by_label("Délai après le déclenchement").fill("bientôt")
        await page.get_by_role("button", name="Enregistrer les réglages").click()
        await expect(page.locator("#delay")).to_have_attribute("aria-invalid", "true")
        await expect(page.locator("#err-delay")).to_contain_text("ISO 8601")
        await page.locator('form[action="/dashboard/settings"] input[name="csrf"]').evaluate(
            "e => e.remove()"
        )
        await page.get_by_role("button", name="Enregistrer les réglages").click()
        await expect(page.locator("h1")).to_have_text("Formulaire expiré")
        read = await api.get(f"/api/v1/shops/{shop['id']}/settings", headers=auth)
        assert read.json()["delay"] == "P4D"

        await page.goto(f"{base}/dashboard/reviews")
        await page.get_by_role("button", name="Publier").click()
        await expect(page.get_by_role("status")).to_contain_text("Avis publié")
        reviews = await api.get(f"/api/v1/shops/{shop['id']}/reviews", headers=auth)
        assert reviews.json()["items"][0]["status"] == "published"
        await _screenshots(page, "reviews")

        await page.get_by_role("link", name="Demandes d'avis").click()
        await page.locator("[data-request] a").first.click()
        await expect(page.locator("h1")).to_contain_text("Demande d'avis")
        await expect(page.locator(".timeline li").first).to_be_visible()
        await expect(page.locator(".timeline")).to_contain_text("sent")
        await _screenshots(page, "request")
        assert [p for p in problems if not expected.search(p)] == [], problems
        await context.close()

    log = server.log.read_text(errors="replace")
    assert "Traceback" not in log, tail(server.log)
