"""The business hours and suppression list pages over HTTP: edited through their forms, read
back through the API; refusals said next to the fields and changing nothing; CSRF; one shop
never sees or changes another's."""

import re
from html import unescape
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.dashboard import suppressions_pages
from tests.dashboard.conftest import client_of, csrf_of, signed_in
from tests.factories import create_shop

HOURS = "/dashboard/settings/hours"
SUPPRESSIONS = "/dashboard/settings/suppressions"
WEEK_FORM = {
    "timezone": "Europe/Paris",
    "week_1": "09:00-12:30, 14:00-18:00",
    "week_2": "09:00-18:00",
    "week_3": "09:00 \u2013 12:00",  # an en dash
    "week_4": "09:00-18:00",
    "week_5": "09:00-17:00",
    "week_6": "10:00-12:00",
    "week_7": "",
    "holidays": "fr",
    "holidays_subdivision": "",
    "closed_dates": "2026-12-31\n2026-12-24",
}


def _field_errors(html: str, field: str) -> str:
    found = re.search(rf'<div class="field-error" id="err-{field}">(.*?)</div>', html, re.S)
    assert found, (field, html[:3000])
    return unescape(found.group(1))


async def _hours(client: httpx.AsyncClient, shop: Any) -> dict[str, Any]:
    answer = await client.get(f"/api/v1/shops/{shop.id}/business-hours", headers=shop.auth)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def _suppressed(client: httpx.AsyncClient, shop: Any) -> list[str | None]:
    answer = await client.get(f"/api/v1/shops/{shop.id}/suppressions", headers=shop.auth)
    assert answer.status_code == 200, answer.text
    return [item["email"] for item in answer.json()["items"]]


async def test_business_hours_are_edited_through_the_form(
    dash: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await create_shop(client)
    await signed_in(dash, shop.api_key)
    settings_page = await dash.get("/dashboard/settings")
    assert (
        f'href="{HOURS}"' in settings_page.text and f'href="{SUPPRESSIONS}"' in settings_page.text
    )
    page = await dash.get(HOURS)
    assert page.status_code == 200
    text = unescape(page.text)
    assert "Heures d'ouverture" in text and "heures par défaut" in text
    for field in ("timezone", *(f"week_{d}" for d in range(1, 8)), "holidays", "closed_dates"):
        assert f'<label for="{field}">' in page.text, field  # a label on every field
    assert 'value="09:00-18:00"' in page.text  # the defaults, Monday to Friday

    saved = await dash.post(HOURS, data={**WEEK_FORM, "csrf": csrf_of(page.text)})
    assert saved.status_code == 303, saved.text[:2000]
    read = await _hours(client, shop)
    assert read["timezone"] == "Europe/Paris" and read["is_default"] is False
    assert read["week"]["1"] == [["09:00", "12:30"], ["14:00", "18:00"]]
    assert read["week"]["3"] == [["09:00", "12:00"]] and read["week"]["7"] == []
    assert read["holidays"] == "FR" and read["holidays_subdivision"] is None
    assert read["closed_dates"] == ["2026-12-24", "2026-12-31"]
    again = unescape((await dash.get(saved.headers["location"])).text)
    assert "Heures d'ouverture enregistrées." in again
    assert 'value="09:00-12:30, 14:00-18:00"' in again and "heures par défaut" not in again

    # A bad interval, overlapping ones, text that is no interval, a bad date: said next to
    # their fields in the shop's language, and nothing changes.
    token = csrf_of(again)
    wrong = {
        **WEEK_FORM,
        "csrf": token,
        "week_1": "12:00-09:00",
        "week_2": "09:00-12:00, 11:00-13:00",
        "week_4": "9h à 18h",
        "week_5": "09:00-25:00",
        "closed_dates": "2026-13-01",
        "holidays": "ZZ",
    }
    refused = await dash.post(HOURS, data=wrong)
    assert refused.status_code == 422
    html = refused.text
    assert "Une plage doit ouvrir avant de fermer" in _field_errors(html, "week_1")
    assert "ne pas se chevaucher" in _field_errors(html, "week_2")
    assert "Écrivez des plages comme 09:00-12:30" in _field_errors(html, "week_4")
    assert "Saisissez des heures comme 09:00" in _field_errors(html, "week_5")
    assert "Saisissez une date, par exemple 2026-12-24." in _field_errors(html, "closed_dates")
    assert "Pas de calendrier des jours fériés" in _field_errors(html, "holidays")
    assert re.search(r'id="week_1" name="week_1" value="12:00-09:00"', html)
    assert "Rien n'a été enregistré." in unescape(html)
    assert "Value error" not in html and "String should" not in html
    assert await _hours(client, shop) == read

    # Alone, an interval closing before it opens is refused too.
    alone = await dash.post(HOURS, data={**WEEK_FORM, "csrf": token, "week_6": "12:00-10:00"})
    assert alone.status_code == 422 and "week_6" in alone.text
    # Text that is no interval, even when the rest is valid, saves nothing.
    unreadable = await dash.post(
        HOURS, data={**WEEK_FORM, "csrf": token, "week_4": "toute la journée"}
    )
    assert unreadable.status_code == 422
    assert "Écrivez des plages" in _field_errors(unreadable.text, "week_4")
    assert await _hours(client, shop) == read
    early = await dash.post(HOURS, data={**WEEK_FORM, "csrf": token, "closed_dates": "1900-01-01"})
    assert early.status_code == 422
    assert "entre 1970-01-01 et 2199-12-31" in _field_errors(early.text, "closed_dates")
    assert await _hours(client, shop) == read


async def test_the_suppression_list_adds_pages_and_removes(
    dash: httpx.AsyncClient, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = await create_shop(client, default_language="es")
    await signed_in(dash, shop.api_key)
    page = await dash.get(SUPPRESSIONS)
    assert page.status_code == 200 and "Ninguna dirección en la lista." in unescape(page.text)
    assert '<label for="email">' in page.text and '<label for="reason">' in page.text
    token = csrf_of(page.text)

    added = await dash.post(SUPPRESSIONS, data={"csrf": token, "email": "Paul@Example.fr"})
    assert added.status_code == 303 and "done=suppression_added" in added.headers["location"]
    assert await _suppressed(client, shop) == ["paul@example.fr"]
    listed = unescape((await dash.get(added.headers["location"])).text)
    assert "La dirección se ha añadido" in listed and "paul@example.fr" in listed
    assert "Añadida a mano" in listed
    twice = await dash.post(SUPPRESSIONS, data={"csrf": token, "email": "paul@example.fr"})
    assert "done=suppression_exists" in twice.headers["location"]
    complaint = await dash.post(
        SUPPRESSIONS, data={"csrf": token, "email": "ana@example.es", "reason": "complaint"}
    )
    assert complaint.status_code == 303
    api = await client.get(
        f"/api/v1/shops/{shop.id}/suppressions/ana@example.es", headers=shop.auth
    )
    assert api.json()["reason"] == "complaint"

    bad = await dash.post(SUPPRESSIONS, data={"csrf": token, "email": "not an address"})
    assert bad.status_code == 422
    assert "Introduce una dirección de correo" in _field_errors(bad.text, "email")
    assert 'value="not an address"' in bad.text
    assert sorted(await _suppressed(client, shop)) == ["ana@example.es", "paul@example.fr"]

    # Paged like the other lists (newest first).
    monkeypatch.setattr(suppressions_pages, "PAGE_SIZE", 1)
    first = await dash.get(SUPPRESSIONS)
    assert "ana@example.es" in first.text and "paul@example.fr" not in first.text
    following = re.search(r'<a href="([^"]+)" rel="next">', first.text)
    assert following, first.text
    second = await dash.get(unescape(following.group(1)))
    assert "paul@example.fr" in second.text and "ana@example.es" not in second.text
    monkeypatch.undo()

    removed = await dash.post(
        f"{SUPPRESSIONS}/remove", data={"csrf": token, "email": "paul@example.fr"}
    )
    assert removed.status_code == 303 and "done=suppression_removed" in removed.headers["location"]
    assert await _suppressed(client, shop) == ["ana@example.es"]
    assert "La dirección se ha quitado" in unescape(
        (await dash.get(removed.headers["location"])).text
    )
    gone = await dash.post(
        f"{SUPPRESSIONS}/remove", data={"csrf": token, "email": "paul@example.fr"}
    )
    assert "problem=suppression_not_found" in gone.headers["location"]
    shown = unescape((await dash.get(gone.headers["location"])).text)
    assert "Esta dirección no está en la lista." in shown


async def test_forms_without_their_token_change_nothing(
    dash: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await create_shop(client)
    await signed_in(dash, shop.api_key)
    token = csrf_of((await dash.get(SUPPRESSIONS)).text)
    assert (
        await dash.post(SUPPRESSIONS, data={"csrf": token, "email": "kept@example.fr"})
    ).status_code == 303
    hours_before = await _hours(client, shop)
    posts = [
        (HOURS, WEEK_FORM),
        (SUPPRESSIONS, {"email": "new@example.fr"}),
        (f"{SUPPRESSIONS}/remove", {"email": "kept@example.fr"}),
    ]
    for path, data in posts:
        for sent in (data, {**data, "csrf": "not-the-token"}):
            answer = await dash.post(path, data=sent)
            assert answer.status_code == 403, (path, answer.text[:500])
            assert "Formulaire expiré" in answer.text
    assert await _hours(client, shop) == hours_before
    assert await _suppressed(client, shop) == ["kept@example.fr"]


async def test_another_shop_neither_sees_nor_changes_them(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    owner = await create_shop(client, "La Poterie")
    async with client_of(app) as dash:
        await signed_in(dash, owner.api_key)
        token = csrf_of((await dash.get(HOURS)).text)
        hours_form = {**WEEK_FORM, "csrf": token, "timezone": "Europe/Rome", "closed_dates": ""}
        assert (await dash.post(HOURS, data=hours_form)).status_code == 303
        added = await dash.post(SUPPRESSIONS, data={"csrf": token, "email": "secret@example.fr"})
        assert added.status_code == 303
    hours_before = await _hours(client, owner)

    other = await create_shop(client, "Autre Boutique")
    async with client_of(app) as dash:
        await signed_in(dash, other.api_key)
        hours_page = await dash.get(HOURS)
        assert 'value="Europe/Rome"' not in hours_page.text
        assert 'value="09:00-12:30, 14:00-18:00"' not in hours_page.text
        listed = await dash.get(SUPPRESSIONS)
        assert "secret@example.fr" not in listed.text
        token = csrf_of(listed.text)
        removed = await dash.post(
            f"{SUPPRESSIONS}/remove", data={"csrf": token, "email": "secret@example.fr"}
        )
        assert "problem=suppression_not_found" in removed.headers["location"]
        own = {**WEEK_FORM, "csrf": token, "timezone": "Europe/Madrid", "week_1": "08:00-20:00"}
        assert (await dash.post(HOURS, data=own)).status_code == 303
    assert await _suppressed(client, owner) == ["secret@example.fr"]
    assert await _hours(client, owner) == hours_before
    assert (await _hours(client, other))["timezone"] == "Europe/Madrid"
