"""The module's product-page templates in a real browser: `prestashop/tests/render-product-page.php`
renders the three review hooks with Debian's smarty4 into a minimal page (from a local copy held
in memory), and headless Chromium (Debian's package, driven by Playwright) opens it: the stars
under the product's name, the list with the shop's replies, the stars in the category list, and
the JSON-LD the page carries. Screenshots at desktop and phone widths go to tests/artifacts/
(git-ignored); RELANCE_UPDATE_SCREENSHOT=1 also rewrites docs/prestashop-reviews.png.

Without php, smarty4 or /usr/bin/chromium the test is skipped with one line, unless
RELANCE_TEST_REQUIRE_BROWSER=1. No browser is ever downloaded."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from playwright.async_api import ViewportSize, async_playwright, expect

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
RENDER = ROOT / "prestashop" / "tests" / "render-product-page.php"
ARTIFACTS = ROOT / "tests" / "artifacts"
DOCS_SCREENSHOT = ROOT / "docs" / "prestashop-reviews.png"
CHROMIUM = "/usr/bin/chromium"
SMARTY = "/usr/share/php/smarty4/Smarty.class.php"
DESKTOP = ViewportSize(width=1024, height=900)
PHONE = ViewportSize(width=390, height=844)


def _missing() -> str | None:
    if shutil.which("php") is None:
        return "php is not installed"
    if not os.path.isfile(SMARTY):
        return "smarty4 is not installed (apt-get install smarty4)"
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} not found: `apt-get install chromium` to run the browser test"
    return None


@pytest.fixture
def page_html(tmp_path: Path) -> Path:
    missing = _missing()
    if missing:
        if os.environ.get("RELANCE_TEST_REQUIRE_BROWSER") == "1":
            pytest.fail(missing, pytrace=False)
        pytest.skip(missing)
    done = subprocess.run(
        ["php", str(RENDER), "fr"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr
    path = tmp_path / "product.html"
    path.write_text(done.stdout, encoding="utf-8")
    return path


async def test_the_product_page_shows_the_stars_and_the_list(page_html: Path) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            context = await browser.new_context(viewport=DESKTOP, locale="fr-FR")
            page = await context.new_page()
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            problems: list[str] = []
            page.on("pageerror", lambda error: problems.append(str(error)))
            await page.goto(page_html.as_uri())

            summary = page.locator(".product .relance-reviews-summary")
            await expect(summary).to_be_visible()
            await expect(summary.locator(".relance-reviews-mean")).to_have_text("4,0/5")
            await expect(summary.locator(".relance-reviews-count")).to_have_text("3 avis")
            filled = await summary.locator(".relance-stars-filled").evaluate(
                "e => e.getBoundingClientRect().width"
                " / e.parentElement.getBoundingClientRect().width"
            )
            assert abs(filled - 0.8) < 0.02, filled

            reviews = page.locator("#relance-reviews .relance-review")
            await expect(reviews).to_have_count(3)
            await expect(page.get_by_role("heading", name="Avis clients")).to_be_visible()
            await expect(reviews.first).to_contain_text("Marie D.")
            await expect(reviews.first.locator(".relance-review-reply")).to_contain_text(
                "Réponse de la boutique"
            )
            await expect(reviews.nth(2).locator(".relance-review-reply")).to_have_count(0)

            lists = page.locator(".miniature .relance-reviews-count")
            await expect(lists).to_have_text(["(3)", "(1)", "(1)"])
            await expect(page.locator('.miniature[data-id="15"] .relance-stars')).to_have_count(0)

            scripts = await page.locator('script[type="application/ld+json"]').all_text_contents()
            assert len(scripts) == 1, scripts
            data = json.loads(scripts[0])
            assert data["@type"] == "Product" and data["name"] == "Bol émaillé bleu"
            assert data["aggregateRating"]["ratingValue"] == 4.0
            assert data["aggregateRating"]["reviewCount"] == 3
            assert [r["author"]["name"] for r in data["review"]] == [
                "Marie D.",
                "Paul M.",
                "Sophie L.",
            ]

            # no third-party script, nothing loaded from elsewhere
            assert all(url.startswith("file:") for url in requests), requests
            assert problems == []

            for name, size in (("desktop", DESKTOP), ("phone", PHONE)):
                await page.set_viewport_size(size)
                overflow = await page.evaluate(
                    "() => document.documentElement.scrollWidth"
                    " - document.documentElement.clientWidth"
                )
                assert overflow <= 0, f"{name}: {overflow} px wider than the window"
                await page.screenshot(
                    path=ARTIFACTS / f"prestashop-reviews-{name}.png", full_page=True
                )
            if os.environ.get("RELANCE_UPDATE_SCREENSHOT") == "1":
                await page.set_viewport_size(DESKTOP)
                await page.screenshot(path=DOCS_SCREENSHOT, full_page=True)
        finally:
            await browser.close()
