"""The review page in a real browser: headless Chromium (Debian's package, driven by Playwright)
opens the 4-star link of an e-mail that a running `relance serve` sent to an aiosmtpd sink,
changes to 5 stars, writes a comment and submits, with JavaScript on and off. Screenshots at a
phone and a desktop width are left in tests/artifacts/ (git-ignored) for a person to look at.

Without /usr/bin/chromium the test is skipped with one line, unless RELANCE_TEST_REQUIRE_BROWSER=1
(as in CI), which makes that a failure. No browser is ever downloaded."""

import asyncio
import html
import os
import re
import secrets
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Route,
    ViewportSize,
    async_playwright,
    expect,
)

from tests.factories import order_event, signed
from tests.smtp_sink import SinkHandler, free_port, smtp_sink
from tests.test_end_to_end import relance_env, run_migrate, serve, tail

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
REQUIRE_BROWSER = os.environ.get("RELANCE_TEST_REQUIRE_BROWSER") == "1"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
PHONE = ViewportSize(width=390, height=844)
DESKTOP = ViewportSize(width=1280, height=900)
# A lit star and an unlit one (#f59e0b and #cbd2d9 in templates/pages/_layout.html).
LIT, UNLIT = "rgb(245, 158, 11)", "rgb(203, 210, 217)"
# Tap targets in CSS pixels: the overall stars, the page's main control, at least 44 (WCAG 2.2
# 2.5.5 and Apple's guideline); every other choice at least 24 (WCAG 2.2 2.5.8, the minimum).
MAIN_TARGET, MIN_TARGET = 44, 24
# The factory's product image: the only thing from elsewhere the page may load (the shop's own
# image, over https). The test serves it, so nothing leaves the machine.
PRODUCT_IMAGE = "https://shop.example/img/12.jpg"
MUG_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="112" height="112">'
    '<rect width="112" height="112" fill="#e4d5c3"/>'
    '<rect x="28" y="30" width="46" height="56" rx="6" fill="#8d6e63"/>'
    '<rect x="70" y="42" width="16" height="28" rx="8" fill="none" stroke="#8d6e63" '
    'stroke-width="6"/></svg>'
)


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path
    admin_token: str


@pytest.fixture
def chromium() -> str:
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    message = f"{CHROMIUM} not found: `apt-get install chromium` to run the browser test"
    if REQUIRE_BROWSER:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
def sink() -> Iterator[tuple[SinkHandler, int]]:
    with smtp_sink() as (handler, port):
        yield handler, port


@pytest.fixture
def server(chromium: str, sink: tuple[SinkHandler, int], tmp_path: Path) -> Iterator[Server]:
    """`relance serve` on SQLite, its links built on its own address, killed in any case."""
    _, smtp_port = sink
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = relance_env(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'relance.db'}",
        mail_url=f"smtp://127.0.0.1:{smtp_port}",
        dispatch_interval="0.3",
        admin_token=secrets.token_urlsafe(24),
        secret_key=secrets.token_urlsafe(32),
        scheduler="on",
        smtp_timeout="5",
        public_url=base_url,
    )
    run_migrate(env, tmp_path)
    with serve(env, tmp_path, port) as (process, log):
        yield Server(process, base_url, log, env["RELANCE_ADMIN_TOKEN"])


async def eventually(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    for _ in range(int(timeout / 0.1)):
        if check():
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def star_link(message: EmailMessage, stars: int) -> str:
    part = message.get_body(("html",))
    assert part is not None
    found = re.findall(rf'href="([^"]*/r/[^"?]+\?rating={stars})"', part.get_content())
    assert len(set(found)) == 1, found
    return html.unescape(found[0])


async def star_colours(page: Page) -> list[str]:
    """The colour of the overall rating's stars, 1 to 5, with the pointer out of the way."""
    await page.mouse.move(0, 0)
    labels = page.locator(".stars:not(.small) label")
    colours = [await labels.nth(i).evaluate("e => getComputedStyle(e).color") for i in range(5)]
    return colours[::-1]  # in the page: 5 first (the stars are laid out right to left)


async def check_layout(page: Page, where: str) -> None:
    """Nothing wider than the window; stars and NPS choices large enough to tap."""
    overflow = await page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{where}: the page is {overflow} px wider than the window"
    for selector, count, least in (
        (".stars:not(.small) label", 5, MAIN_TARGET),
        (".stars.small label", 5, MIN_TARGET),  # the mug's
        (".nps label", 11, MIN_TARGET),
    ):
        targets = page.locator(selector)
        assert await targets.count() == count, selector
        for i in range(count):
            box = await targets.nth(i).bounding_box()
            assert box is not None
            assert min(box["width"], box["height"]) >= least, (where, selector, i, box)


async def screenshots(page: Page, name: str) -> None:
    """A full-page screenshot at each width, ending at the phone width it started at."""
    for width, size in (("desktop", DESKTOP), ("phone", PHONE)):
        await page.set_viewport_size(size)
        if name.startswith("review"):
            await check_layout(page, f"{name} at {width} width")
        await page.screenshot(path=ARTIFACTS / f"{name}-{width}.png", full_page=True)


async def review_in(
    context: BrowserContext, base_url: str, link: str, comment: str, name: str
) -> None:
    """Open the 4-star link, change to 5 stars, comment, submit, see the thank-you page."""
    elsewhere: list[str] = []
    problems: list[str] = []

    async def route(route: Route) -> None:
        url = route.request.url
        if url.startswith(f"{base_url}/"):
            await route.continue_()
            return
        elsewhere.append(url)
        if url == PRODUCT_IMAGE:
            await route.fulfill(status=200, content_type="image/svg+xml", body=MUG_SVG)
        else:
            await route.abort()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(message.text)

    await context.route("**/*", route)
    page = await context.new_page()
    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(str(error)))

    opened = await page.goto(link)
    assert opened is not None and opened.status == 200, opened
    await expect(page.locator("html")).to_have_attribute("lang", "fr")
    await expect(page.locator('input[name="rating"][value="4"]')).to_be_checked()
    await expect(page.locator('input[name="rating"]:checked')).to_have_count(1)
    assert await star_colours(page) == [LIT] * 4 + [UNLIT]
    await expect(page.locator("footer")).to_contain_text("achat vérifié")
    await expect(page.locator(".product img")).to_have_js_property("naturalWidth", 112)
    await screenshots(page, f"review-{name}")

    await page.click('label[for="rating-5"]')
    await expect(page.locator('input[name="rating"][value="5"]')).to_be_checked()
    assert await star_colours(page) == [LIT] * 5
    await page.fill('textarea[name="comment"]', comment)
    async with page.expect_navigation():
        await page.click('button[type="submit"]')
    await expect(page.locator("h1")).to_have_text("Merci !")
    await expect(page.locator("body")).to_contain_text("Votre avis a bien été enregistré")
    await screenshots(page, f"thanks-{name}")

    assert set(elsewhere) <= {PRODUCT_IMAGE}, elsewhere
    assert problems == [], problems
    await page.close()


async def test_a_customer_reviews_from_the_email_in_chromium_with_and_without_javascript(
    browser: Browser, server: Server, sink: tuple[SinkHandler, int]
) -> None:
    handler, _ = sink
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as api:
        created = await api.post(
            "/api/v1/shops",
            json={"name": "La Poterie de Marie", "timezone": "Europe/Paris", "language": "fr"},
            headers={"Authorization": f"Bearer {server.admin_token}"},
        )
        assert created.status_code == 201, created.text
        shop = created.json()
        auth = {"Authorization": f"Bearer {shop['api_key']}"}
        patched = await api.patch(
            f"/api/v1/shops/{shop['id']}/settings", json={"delay": "PT1S"}, headers=auth
        )
        assert patched.status_code == 200, patched.text

        # Two orders, two customers (one request per address per cooldown).
        customers = {1: "marie@example.fr", 2: "paul@example.fr"}
        for order_id, email in customers.items():
            body, headers = signed(shop["webhook_secret"], order_event(order_id, 1, 5, email=email))
            posted = await api.post(
                f"/webhooks/prestashop/{shop['id']}", content=body, headers=headers
            )
            assert posted.status_code == 202, posted.text
        await eventually(lambda: len(handler.messages) == 2, "two e-mails at the SMTP sink")
        links = {
            order_id: star_link(message, 4)
            for order_id, email in customers.items()
            for message in handler.messages
            if message["To"] == email
        }
        assert set(links) == {1, 2}
        for link in links.values():
            assert link.startswith(f"{server.base_url}/r/"), link

        comments = {1: "Très beau mug, bien emballé.", 2: "Livré vite, sans JavaScript !"}
        for order_id, javascript, name in ((1, True, "js"), (2, False, "nojs")):
            context = await browser.new_context(
                viewport=PHONE, java_script_enabled=javascript, locale="fr-FR"
            )
            try:
                await review_in(context, server.base_url, links[order_id], comments[order_id], name)
            finally:
                await context.close()

        listed = await api.get(f"/api/v1/shops/{shop['id']}/reviews", headers=auth)
        assert listed.status_code == 200, listed.text
        reviews: dict[int, Any] = {r["order_id"]: r for r in listed.json()["items"]}
        assert {k: (r["rating"], r["comment"]) for k, r in reviews.items()} == {
            1: (5, comments[1]),
            2: (5, comments[2]),
        }

    log = server.log.read_text(errors="replace")
    assert "Traceback" not in log, tail(server.log)
