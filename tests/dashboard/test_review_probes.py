"""Review probes of the dashboard's settings pages and the KPI report's two lanes: what a
merchant or a customer controls is escaped wherever a page shows it, forged query values and
oversized forms are refused rather than crashing a page, every text a page builds from a
vocabulary exists in the five languages, and the report gives the same figures on one
connection or two, its buckets adding up to the whole period, its connections given back when
it is cancelled."""

import asyncio
import base64
import html
import json
import re
import string
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, Route
from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.dashboard.error_texts import TYPE_KEYS
from app.dashboard.rendering import TEMPLATES_DIR
from app.dashboard.timeline_view import _DETAILS, STEP_KEYS
from app.db import transaction, utcnow
from app.emailtemplates.rendering import TemplateKind
from app.hooks import service as hooks
from app.hooks.models import HookAttempt, HookDelivery
from app.hooks.vocabulary import DisabledReason, EventType, HookStatus
from app.kpis import service
from app.languages import LANGUAGES
from app.requests.vocabulary import Status
from app.suppressions.vocabulary import SuppressionReason
from tests.dashboard.conftest import DASHBOARD_URL, csrf_of, signed_in
from tests.factories import create_shop, order_event, post_event
from tests.kpis.test_kpis import FROM, NOW, TO, shops
from tests.reviews.test_browser import PHONE, browser, chromium  # noqa: F401 (fixtures)

HOURS = "/dashboard/settings/hours"
SUPPRESSIONS = "/dashboard/settings/suppressions"
TEMPLATES = "/dashboard/settings/templates"
WEBHOOKS = "/dashboard/settings/webhooks"
PUBLIC_URL = "https://8.8.8.8/relance-hook"
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
LINKS = '<p><a href="{{ review_url }}">Avis</a></p><p><a href="{{ unsubscribe_url }}">Stop</a></p>'


# --- Texts ----------------------------------------------------------------------------------


def _texts(language: str) -> dict[str, str]:
    path = Path(TEMPLATES_DIR) / "texts" / f"{language}.json"
    loaded: dict[str, str] = json.loads(path.read_text("utf-8"))
    return loaded


def _blanks(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def test_every_text_a_page_builds_exists_in_every_language_with_the_same_blanks() -> None:
    """Keys built from vocabularies (`t["event_type_" ~ ev]`, the timeline's, the redirects'
    notices) exist in each language's own file — `texts` fills gaps with English silently —
    and every translation has the blanks its English has (else `.format` fails or loses one)."""
    built = {
        *(f"event_type_{e.value}" for e in EventType),
        *(f"hook_status_{s.value}" for s in HookStatus),
        *(f"webhook_disabled_{r.value}" for r in DisabledReason),
        *(f"kind_{k.value}" for k in TemplateKind),
        *(f"language_{lang}" for lang in LANGUAGES),
        *(f"suppression_reason_{r.value}" for r in SuppressionReason),
        *(f"request_status_{s.value}" for s in Status),
        *(f"templates_uses_{u}" for u in ("own", "reminder", "default")),
        *(f"weekday_{d}" for d in range(1, 8)),
        *STEP_KEYS.values(),
        *(key for patterns in _DETAILS.values() for _, key in patterns),
        *TYPE_KEYS.values(),
        "step_event",
        "source_trigger",
        "source_fallback",
        "email_first",
        "email_reminder",
        "reason_none",
        # The notices the new pages redirect with (`back_to(..., done=/problem=)`): a missing
        # one would read as the generic "Done." rather than what happened.
        *(
            f"done_{d}"
            for d in (
                "hours_saved",
                "suppression_added",
                "suppression_exists",
                "suppression_removed",
                "template_saved",
                "template_reset",
                "webhook_added",
                "webhook_enabled",
                "webhook_disabled",
                "webhook_deleted",
            )
        ),
        "problem_suppression_not_found",
        "problem_template_not_found",
    }
    english = _texts("en")
    assert not sorted(built - set(english))
    for language in sorted(LANGUAGES):
        own = _texts(language)
        assert set(own) == set(english), language
        different = [k for k in english if _blanks(own[k]) != _blanks(english[k])]
        assert not different, (language, different)


async def _add_endpoint(dash: httpx.AsyncClient, token: str, url: str) -> httpx.Response:
    return await dash.post(
        WEBHOOKS, data={"csrf": token, "url": url, "events": ["review.submitted"]}
    )


# --- Escaping -------------------------------------------------------------------------------


async def test_values_merchants_and_customers_control_are_escaped_on_the_new_pages(
    dash: httpx.AsyncClient, client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    shop = await create_shop(client, "La Poterie")
    await signed_in(dash, shop.api_key)
    token = csrf_of((await dash.get(WEBHOOKS)).text)

    # A template's parts and subject: in the editor's textareas, echoed after a refusal and
    # shown again once saved.
    part = f"</textarea>{SCRIPT}{LINKS}"
    fields = {"csrf": token, "subject": f"{SCRIPT} {{{{ shop_name }}}}", "html": part}
    fields["text"] = "{{ review_url }} {{ unsubscribe_url }} </textarea>" + IMG
    saved = await dash.post(f"{TEMPLATES}/request/fr", data=fields)
    assert saved.status_code == 303, saved.text[:2000]
    for page in (saved, await dash.get(f"{TEMPLATES}/request/fr")):
        assert SCRIPT not in page.text and IMG not in page.text
        assert "</textarea><script" not in page.text
    refused = await dash.post(f"{TEMPLATES}/request/fr", data={**fields, "html": SCRIPT})
    assert refused.status_code == 422
    assert SCRIPT not in refused.text and "&lt;script&gt;" in refused.text

    # A suppression address refused and echoed in its field.
    bad = await dash.post(SUPPRESSIONS, data={"csrf": token, "email": f'x"{SCRIPT}@example.fr'})
    assert bad.status_code == 422
    assert SCRIPT not in bad.text and 'value="x"' not in bad.text

    # Webhook URLs, refused (echoed) or registered (listed, in labels, on the log's page).
    for url in (f"javascript:alert(1)//{SCRIPT}", f'https://8.8.8.8/a"{IMG}'):
        answer = await _add_endpoint(dash, token, url)
        assert answer.status_code in (201, 422), answer.text[:2000]
        assert SCRIPT not in answer.text and IMG not in answer.text
        assert 'href="javascript:' not in answer.text
    listed = await dash.get(WEBHOOKS)
    assert IMG not in listed.text and 'href="javascript:' not in listed.text

    # A delivery's error, as the receiving server's answer may word it.
    token = csrf_of(listed.text)
    added = await _add_endpoint(dash, token, PUBLIC_URL)
    assert added.status_code == 201
    endpoint = re.findall(r'href="/dashboard/settings/webhooks/([^"/]+)"', added.text)[-1]
    async with transaction(engine) as conn:
        await hooks.emit(
            conn, EventType.REVIEW_SUBMITTED, [hooks.Event(shop.id, {"rating": 5})], utcnow()
        )
        await conn.execute(
            update(HookDelivery).values(status="failed", attempts=1, last_error=SCRIPT + IMG)
        )
        delivery_id = (await conn.execute(HookDelivery.__table__.select())).first()
        assert delivery_id is not None
        await conn.execute(
            insert(HookAttempt).values(
                delivery_id=delivery_id.id, attempt=1, at=utcnow(), status_code=None,
                duration_ms=3, error=IMG,
            )
        )  # fmt: skip
    log = await dash.get(f"{WEBHOOKS}/{endpoint}")
    assert log.status_code == 200
    assert SCRIPT not in log.text and IMG not in log.text and "&lt;img" in log.text

    # A timeline step naming the sender's webhook id (what PrestaShop's module sends).
    answer = await post_event(client, shop, order_event(7, 1, 5), msg_id=f"msg_{IMG}")
    if answer.status_code == 202:
        api = f"/api/v1/shops/{shop.id}/review-requests"
        [request] = (await client.get(api, headers=shop.auth)).json()["items"]
        page = await dash.get(f"/dashboard/requests/{request['id']}")
        assert page.status_code == 200 and IMG not in page.text
        assert f"msg_{IMG}" in html.unescape(page.text)  # shown, escaped
    else:
        assert answer.status_code in (400, 401, 422), answer.text


# --- Forged and oversized inputs ------------------------------------------------------------


def _b64(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


FORGED_CURSORS = [
    "x",
    "%00",
    "-1",
    "9" * 100,
    _b64("{}"),
    _b64('{"at": "not a date", "id": -1}'),
    _b64('["2026-01-01T00:00:00+00:00", 99999999999999999999999]'),
    _b64("2026-01-01T00:00:00+00:00|1"),
    _b64("9999-12-31T23:59:59|" + "9" * 30),
    "A" * 101,
]


async def test_forged_query_values_and_ids_never_fail_a_page(
    dash: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await create_shop(client, "La Poterie")
    await signed_in(dash, shop.api_key)
    token = csrf_of((await dash.get(WEBHOOKS)).text)
    added = await _add_endpoint(dash, token, PUBLIC_URL)
    endpoint = re.findall(r'href="/dashboard/settings/webhooks/([^"/]+)"', added.text)[-1]
    for cursor in FORGED_CURSORS:
        for path in (SUPPRESSIONS, f"{WEBHOOKS}/{endpoint}"):
            answer = await dash.get(path, params={"cursor": cursor})
            assert answer.status_code in (200, 400, 404), (path, cursor, answer.text[:500])
    for status in ("bogus", SCRIPT, "scheduled" * 50):
        answer = await dash.get(f"{WEBHOOKS}/{endpoint}", params={"status": status})
        assert answer.status_code == 200 and SCRIPT not in answer.text
    # Notices come from the texts only.
    for page in (HOURS, SUPPRESSIONS, TEMPLATES, WEBHOOKS):
        answer = await dash.get(page, params={"done": SCRIPT, "problem": "x" * 5000})
        assert answer.status_code == 200 and SCRIPT not in answer.text
    long_id = "e" * 5000
    assert (await dash.get(f"{WEBHOOKS}/{long_id}")).status_code == 404
    for action in ("disable", "enable", "delete"):
        answer = await dash.post(f"{WEBHOOKS}/{long_id}/{action}", data={"csrf": token})
        assert answer.status_code == 404
    for kind, language in (("bogus", "fr"), ("request", "xx"), ("request", "FR")):
        assert (await dash.get(f"{TEMPLATES}/{kind}/{language}")).status_code == 404
        answer = await dash.post(f"{TEMPLATES}/{kind}/{language}", data={"csrf": token})
        assert answer.status_code == 404


async def test_oversized_hours_and_fields_are_refused_quickly(
    dash: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await create_shop(client, "La Poterie")
    await signed_in(dash, shop.api_key)
    token = csrf_of((await dash.get(HOURS)).text)
    many = ", ".join(f"{h % 24:02d}:00-{h % 24:02d}:30" for h in range(1200))
    dates = "\n".join(f"2027-{1 + d % 12:02d}-{1 + d % 28:02d}" for d in range(1500))
    form = {"csrf": token, "timezone": "Europe/Paris", "week_1": many, "closed_dates": dates}
    started = time.monotonic()
    answer = await dash.post(HOURS, data=form)
    assert answer.status_code == 422, answer.text[:1000]
    assert time.monotonic() - started < 5
    huge = await dash.post(HOURS, data={**form, "week_2": "09:00-10:00, " * 10_000})
    assert huge.status_code == 413
    stored = await client.get(f"/api/v1/shops/{shop.id}/business-hours", headers=shop.auth)
    assert stored.status_code == 200 and stored.json()["week"]["1"] != []  # default kept
    # Thousands of fields in one form.
    fields = "&".join(f"events={i}" for i in range(3000))
    crowded = await dash.post(
        WEBHOOKS,
        content=f"csrf={token}&url={PUBLIC_URL}&{fields}",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert crowded.status_code in (400, 413)


async def test_a_new_endpoints_secret_is_in_no_url_cache_or_later_answer(
    dash: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await create_shop(client, "La Poterie")
    await signed_in(dash, shop.api_key)
    token = csrf_of((await dash.get(WEBHOOKS)).text)
    added = await _add_endpoint(dash, token, PUBLIC_URL)
    assert added.status_code == 201
    found = re.search(r"whsec_[A-Za-z0-9+/=_-]+", added.text)
    assert found
    secret = found.group(0)
    assert "location" not in added.headers
    assert added.headers["cache-control"] == "no-store"
    api = await client.get(f"/api/v1/shops/{shop.id}/webhook-endpoints", headers=shop.auth)
    assert secret not in api.text
    for path in (WEBHOOKS, f"{WEBHOOKS}/{api.json()['items'][0]['id']}"):
        assert secret not in (await dash.get(path)).text


# --- The KPI report's lanes -----------------------------------------------------------------


PERIODS = [
    (FROM, TO, None),
    (FROM, TO, "week"),
    (FROM, TO, "month"),
    (date(2026, 3, 25), date(2026, 4, 2), "week"),  # starts mid-week, crosses a month edge
    (date(2026, 3, 25), date(2026, 4, 2), "month"),
    (date(2026, 3, 28), date(2026, 3, 30), "week"),  # around the DST change (Europe/Paris)
    (date(2027, 1, 4), date(2027, 2, 28), "week"),  # after everything: empty
]


@pytest.mark.postgres_only
async def test_both_lanes_agree_with_one_connection_in_every_case(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    a, b = await shops(client, engine)
    empty = await create_shop(client, "Nothing yet")
    for shop_id in (a.id, b.id, empty.id):
        for start, end, granularity in PERIODS:
            async with engine.connect() as conn:
                alone = await service.report(
                    conn, shop_id, start, end, now=NOW, granularity=granularity
                )
            async with engine.connect() as conn:
                both = await service.report(
                    conn, shop_id, start, end, now=NOW, granularity=granularity, concurrent=True
                )
            assert both == alone, (shop_id, start, end, granularity)


async def test_buckets_add_up_to_the_whole_period(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """Each KPI's count over the period is the sum of its buckets' (every item is in one
    bucket): the days folded into weeks or months lose or double nothing."""
    a, _ = await shops(client, engine)
    for start, end, granularity in PERIODS[1:]:
        async with engine.connect() as conn:
            report = await service.report(
                conn, a.id, start, end, now=NOW, granularity=granularity, concurrent=True
            )
        assert report.series is not None
        dumped = report.model_dump(by_alias=True)
        starts = [p["period_start"] for p in dumped["series"]]
        assert starts == sorted(set(starts))
        for key, whole in dumped["kpis"].items():
            summed = sum(p["kpis"][key]["count"] for p in dumped["series"])
            assert summed == whole["count"], (start, granularity, key)


@pytest.mark.postgres_only
async def test_a_report_cancelled_mid_statement_gives_its_connections_back(
    client: httpx.AsyncClient, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that goes away cancels the report while both lanes are in a statement: the
    second connection and its slot are given back, and no connection stays checked out."""
    a, _ = await shops(client, engine)

    async def slow(conn: Any, p: Any, *args: Any) -> Any:
        await conn.exec_driver_sql("SELECT pg_sleep(5)")
        return {}

    # One pass of each lane (the lanes are balanced from the passes' costs).
    for lane in service._lanes({name: False for name in service.PASS_COST_MS}):
        name = next(n for n in lane if n in service._SIMPLE_PASSES)
        monkeypatch.setitem(service._SIMPLE_PASSES, name, slow)
    pool: Any = engine.pool
    before = pool.checkedout()

    async def run() -> None:
        async with engine.connect() as conn:
            await service.report(conn, a.id, FROM, TO, now=NOW, concurrent=True)

    task = asyncio.ensure_future(run())
    deadline = time.monotonic() + 5
    while pool.checkedout() < before + 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert pool.checkedout() == before + 2
    await asyncio.sleep(0.2)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 4  # not after the statements' 5 s
    assert pool.checkedout() == before
    async with engine.connect() as conn:
        slots = service._spare(conn)
        assert slots is not None and slots._value == service.spare_slots(pool)
        assert (await conn.exec_driver_sql("SELECT 1")).scalar() == 1
    assert datetime.now(UTC) > NOW


# --- Phone width ----------------------------------------------------------------------------


async def _in_browser(chromium_page: Browser, dash: httpx.AsyncClient) -> Page:
    """A phone-sized page whose every request is answered by `dash` (its cookies: signed in),
    so the real layout is measured without a server."""
    context = await chromium_page.new_context(viewport=PHONE, locale="fr-FR")
    page = await context.new_page()

    async def answer(route: Route) -> None:
        request = route.request
        sent = await dash.request(
            request.method,
            request.url.removeprefix(DASHBOARD_URL),
            content=request.post_data_buffer,
            headers={"content-type": request.headers.get("content-type", "text/plain")},
        )
        await route.fulfill(status=sent.status_code, headers=dict(sent.headers), body=sent.content)

    await page.route("**/*", answer)
    return page


async def _overflow(page: Page, path: str) -> int:
    await page.goto(DASHBOARD_URL + path)
    found: int = await page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    return found


async def _widest_row(page: Page) -> int:
    """How much wider than its scrolling frame the widest table is (scrolled sideways)."""
    found: int = await page.evaluate(
        "() => Math.max(0, ...[...document.querySelectorAll('.table-wrap')]"
        ".map(w => w.scrollWidth - w.clientWidth))"
    )
    return found


@pytest.mark.slow
async def test_the_new_pages_fit_a_phone_with_long_values(
    dash: httpx.AsyncClient,
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    browser: Browser,  # noqa: F811
) -> None:
    shop = await create_shop(client, "La Poterie")
    await signed_in(dash, shop.api_key)
    token = csrf_of((await dash.get(WEBHOOKS)).text)
    long_url = "https://8.8.8.8/" + "relance-hook-" * 40
    added = await _add_endpoint(dash, token, long_url)
    assert added.status_code == 201
    endpoint = re.findall(r'href="/dashboard/settings/webhooks/([^"/]+)"', added.text)[-1]
    long_address = "marie." + "dupont-" * 8 + "x@" + "boutique-de-poterie." * 5 + "example.fr"
    answer = await dash.post(SUPPRESSIONS, data={"csrf": token, "email": long_address})
    assert answer.status_code == 303
    error = "ConnectTimeout: the connection to 8.8.8.8:443 was not answered within 10 seconds"
    async with transaction(engine) as conn:
        await hooks.emit(
            conn, EventType.REVIEW_SUBMITTED, [hooks.Event(shop.id, {"rating": 5})], utcnow()
        )
        await conn.execute(update(HookDelivery).values(status="failed", last_error=error))
    page = await _in_browser(browser, dash)
    for path in (HOURS, SUPPRESSIONS, TEMPLATES, f"{TEMPLATES}/request/fr", WEBHOOKS):
        assert await _overflow(page, path) <= 0, path
    assert await _overflow(page, f"{WEBHOOKS}/{endpoint}") <= 0


@pytest.mark.slow
async def test_a_delivery_error_wraps_in_the_log_at_phone_width(
    dash: httpx.AsyncClient,
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    browser: Browser,  # noqa: F811
) -> None:
    # Was a defect: dashboard.css `code.code { white-space: nowrap }` applied to
    # templates/dashboard/webhook.html's `last_error` and attempt errors.
    shop = await create_shop(client, "La Poterie")
    await signed_in(dash, shop.api_key)
    token = csrf_of((await dash.get(WEBHOOKS)).text)
    added = await _add_endpoint(dash, token, PUBLIC_URL)
    endpoint = re.findall(r'href="/dashboard/settings/webhooks/([^"/]+)"', added.text)[-1]
    error = (
        "ConnectTimeout: the connection to 8.8.8.8:443 was not answered within 10 seconds, "
        "the endpoint may be down or a firewall may drop Relance's requests"
    )
    async with transaction(engine) as conn:
        await hooks.emit(
            conn, EventType.REVIEW_SUBMITTED, [hooks.Event(shop.id, {"rating": 5})], utcnow()
        )
        await conn.execute(update(HookDelivery).values(status="failed", last_error=error))
    page = await _in_browser(browser, dash)
    assert await _overflow(page, f"{WEBHOOKS}/{endpoint}") <= 0
    assert await _widest_row(page) <= PHONE["width"] // 2


# --- A template's cost ----------------------------------------------------------------------

NESTED_LOOPS = (
    '<p><a href="{{ review_url }}">Avis</a> <a href="{{ unsubscribe_url }}">Stop</a></p>'
    "{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}"
    "{% endfor %}{% endfor %}{% endfor %}"
)
_CHECK = """
import sys
from app.emailtemplates.rendering import MerchantTemplate, TemplateKind, check
text = "{{ review_url }} {{ unsubscribe_url }}"
print(check(MerchantTemplate(subject="Avis", html=sys.argv[1], text=text), TemplateKind.REQUEST))
"""


def test_a_template_of_nested_loops_is_refused_quickly() -> None:
    # Was a defect: app/emailtemplates/rendering.py `check` (called by service.save for the API PUT
    # and by the dashboard's editor, twice when refused: templates_pages._sandbox_errors) and
    # `render` (every e-mail sent) have no budget: 10^9 empty iterations here, ~10^10 possible
    # with range()'s 100,000 cap. Run in a child process so the probe itself cannot hang.
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHECK, NESTED_LOOPS],
            cwd=Path(__file__).resolve().parents[2],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the sandbox's check of a 200-character template ran for over 5 s")
    assert done.returncode == 0, done.stderr
    assert "loop" in done.stdout or "range" in done.stdout  # refused, with a reason


async def test_a_subdivision_without_a_country_is_said_as_such(
    dash: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    # Was a defect: app/dashboard/hours_pages.py `_place` mapped both of hours_schemas'
    # `_known_subdivision` rules ("needs a `holidays` country", "{country} has no subdivision")
    # to `value_holidays_subdivision`.
    shop = await create_shop(client, "La Poterie")
    await signed_in(dash, shop.api_key)
    token = csrf_of((await dash.get(HOURS)).text)
    said: dict[str, str] = {}
    for country, subdivision in (("FR", "XX"), ("", "BY")):
        form = {"csrf": token, "timezone": "Europe/Paris", "week_1": "09:00-12:00"}
        form |= {"holidays": country, "holidays_subdivision": subdivision}
        answer = await dash.post(HOURS, data=form)
        assert answer.status_code == 422
        found = re.search(r'id="err-holidays_subdivision">(.*?)</div>', answer.text, re.S)
        assert found, answer.text[:3000]
        said[country] = html.unescape(found.group(1))
    assert said["FR"] != said[""]
