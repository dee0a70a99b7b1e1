"""The e-mail templates and outgoing webhooks pages over HTTP: edited through their forms, read
back through the API; the sandbox's and the URL rule's refusals said next to the fields and
saving nothing; the secret shown once; CSRF; one shop never sees or changes another's."""

import re
from html import unescape
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import transaction, utcnow
from app.hooks import service as hooks
from app.hooks.models import HookAttempt, HookDelivery
from app.hooks.vocabulary import EventType
from tests.dashboard.conftest import client_of, csrf_of, signed_in
from tests.factories import ShopInfo, create_shop

TEMPLATES = "/dashboard/settings/templates"
WEBHOOKS = "/dashboard/settings/webhooks"
# A public address, written as one: it resolves without DNS, and nothing is ever sent to it
# (the scheduler is off in tests).
PUBLIC_URL = "https://8.8.8.8/relance-hook"
TEMPLATE = {
    "subject": "{{ shop_name }} : votre avis sur {{ order_reference or 'votre commande' }} ?",
    "html": '<p>Bonjour {{ firstname or "" }},</p>\r\n'
    '<p><a href="{{ review_url }}">Donner mon avis</a></p>\r\n'
    '<p><a href="{{ unsubscribe_url }}">Se désabonner</a></p>',
    "text": "Bonjour,\r\n\r\nVotre avis : {{ review_url }}\r\n\r\n"
    "Se désabonner : {{ unsubscribe_url }}\r\n",
}


def _field_errors(html: str, field: str) -> str:
    found = re.search(rf'<div class="field-error" id="err-{field}">(.*?)</div>', html, re.S)
    assert found, (field, html[:3000])
    return unescape(found.group(1))


async def _template(client: httpx.AsyncClient, shop: ShopInfo, kind: str, lang: str) -> Any:
    answer = await client.get(f"/api/v1/shops/{shop.id}/templates/{kind}/{lang}", headers=shop.auth)
    assert answer.status_code in (200, 404), answer.text
    return answer.json() if answer.status_code == 200 else None


async def _endpoints(client: httpx.AsyncClient, shop: ShopInfo) -> list[dict[str, Any]]:
    answer = await client.get(f"/api/v1/shops/{shop.id}/webhook-endpoints", headers=shop.auth)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


async def test_a_template_is_saved_through_the_form_and_reset(
    dash: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await create_shop(client, "La Poterie")
    await signed_in(dash, shop.api_key)
    settings_page = await dash.get("/dashboard/settings")
    assert f'href="{TEMPLATES}"' in settings_page.text
    assert f'href="{WEBHOOKS}"' in settings_page.text

    listed = await dash.get(TEMPLATES)
    assert listed.status_code == 200
    row = re.search(r'<tr id="tpl-request-fr">(.*?)</tr>', listed.text, re.S)
    assert row and "Modèle par défaut de Relance" in unescape(row.group(1))

    editor = await dash.get(f"{TEMPLATES}/request/fr")
    assert editor.status_code == 200
    for field in ("subject", "html", "text"):
        assert f'<label for="{field}">' in editor.text, field
    assert "Pas encore de modèle à vous" in unescape(editor.text)
    token = csrf_of(editor.text)

    saved = await dash.post(f"{TEMPLATES}/request/fr", data={**TEMPLATE, "csrf": token})
    assert saved.status_code == 303, saved.text[:3000]
    assert saved.headers["location"] == f"{TEMPLATES}/request/fr?done=template_saved"
    read = await _template(client, shop, "request", "fr")
    assert read["subject"] == TEMPLATE["subject"]
    assert read["html"] == TEMPLATE["html"].replace("\r\n", "\n")  # a textarea's CRLF
    assert read["text"] == TEMPLATE["text"].replace("\r\n", "\n")
    again = unescape((await dash.get(saved.headers["location"])).text)
    assert "Modèle enregistré" in again and "Votre propre modèle, enregistré le" in again
    assert "Donner mon avis" in again

    # The list says which kinds use it; the preview (the settings' own) renders it.
    listed = unescape((await dash.get(TEMPLATES)).text)
    row = re.search(r'<tr id="tpl-request-fr">(.*?)</tr>', listed, re.S)
    assert row and "Votre propre modèle" in row.group(1)
    preview = await dash.get("/dashboard/settings/preview?kind=request&language=fr")
    assert "Votre propre modèle." in unescape(preview.text)
    assert "La Poterie : votre avis sur XKBKNABJK ?" in unescape(preview.text)

    # The reset (the API's DELETE): the default applies again; twice is "nothing to delete".
    reset = await dash.post(f"{TEMPLATES}/request/fr/delete", data={"csrf": token})
    assert reset.status_code == 303 and "done=template_reset" in reset.headers["location"]
    assert await _template(client, shop, "request", "fr") is None
    twice = await dash.post(f"{TEMPLATES}/request/fr/delete", data={"csrf": token})
    assert "problem=template_not_found" in twice.headers["location"]

    # A template for every reminder: the numbered reminders say they use it.
    general = await dash.post(f"{TEMPLATES}/reminder/en", data={**TEMPLATE, "csrf": token})
    assert general.status_code == 303
    listed = unescape((await dash.get(TEMPLATES)).text)
    row = re.search(r'<tr id="tpl-reminder_2-en">(.*?)</tr>', listed, re.S)
    assert row and "Votre modèle pour toutes les relances" in row.group(1)
    second = unescape((await dash.get(f"{TEMPLATES}/reminder_2/en")).text)
    assert "Donner mon avis" in second and "votre modèle pour toutes les relances" in second

    # Unknown kinds and languages are pages not found.
    assert (await dash.get(f"{TEMPLATES}/newsletter/fr")).status_code == 404
    assert (await dash.get(f"{TEMPLATES}/request/nl")).status_code == 404


async def test_a_new_template_starts_from_a_valid_one(
    dash: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await create_shop(client, default_language="de")
    await signed_in(dash, shop.api_key)
    editor = await dash.get(f"{TEMPLATES}/reminder_1/it")
    fields = {
        name: unescape(found.group(1))
        for name, found in (
            ("subject", re.search(r'id="subject" name="subject" value="([^"]*)"', editor.text)),
            ("html", re.search(r'<textarea id="html"[^>]*>(.*?)</textarea>', editor.text, re.S)),
            ("text", re.search(r'<textarea id="text"[^>]*>(.*?)</textarea>', editor.text, re.S)),
        )
        if found
    }
    assert set(fields) == {"subject", "html", "text"} and "Lascia una recensione" in fields["html"]
    saved = await dash.post(
        f"{TEMPLATES}/reminder_1/it", data={**fields, "csrf": csrf_of(editor.text)}
    )
    assert saved.status_code == 303, saved.text[:3000]
    assert (await _template(client, shop, "reminder_1", "it"))["text"] == fields["text"]


async def test_a_template_the_sandbox_refuses_saves_nothing(
    dash: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await create_shop(client, default_language="es")
    await signed_in(dash, shop.api_key)
    token = csrf_of((await dash.get(f"{TEMPLATES}/request/fr")).text)
    assert (
        await dash.post(f"{TEMPLATES}/request/fr", data={**TEMPLATE, "csrf": token})
    ).status_code == 303
    before = await _template(client, shop, "request", "fr")

    unsafe = {
        **TEMPLATE,
        "csrf": token,
        "html": "<p>{{ review_url }} {{ unsubscribe_url }}</p>\n<p>{{ secret_key }}</p>",
        "text": "{% include 'x' %}",
        "subject": "{{ shop_name",
    }
    refused = await dash.post(f"{TEMPLATES}/request/fr", data=unsafe)
    assert refused.status_code == 422
    html_errors = _field_errors(refused.text, "html")
    assert "Rechazado en la línea 2:" in html_errors and "secret_key" in html_errors
    assert "include" in _field_errors(refused.text, "text")
    assert "Rechazado en la línea 1:" in _field_errors(refused.text, "subject")
    assert "No se ha guardado nada" in unescape(refused.text)
    assert "{{ secret_key }}" in unescape(refused.text)  # what was typed is kept
    # The links a template must show.
    linkless = {**TEMPLATE, "csrf": token, "text": "Hola {{ firstname }}"}
    refused = await dash.post(f"{TEMPLATES}/request/fr", data=linkless)
    assert refused.status_code == 422
    assert "unsubscribe_url" in _field_errors(refused.text, "text")
    # Empty parts and parts too large: the API's schema, in the shop's language.
    empty = await dash.post(
        f"{TEMPLATES}/request/fr", data={**TEMPLATE, "csrf": token, "subject": " "}
    )
    assert empty.status_code == 422
    assert "Este campo es obligatorio." in _field_errors(empty.text, "subject")
    huge = await dash.post(
        f"{TEMPLATES}/request/fr", data={**TEMPLATE, "csrf": token, "subject": "é" * 200}
    )
    assert huge.status_code == 422
    assert "300 bytes como máximo" in _field_errors(huge.text, "subject")
    assert await _template(client, shop, "request", "fr") == before


async def test_an_endpoint_is_added_shown_once_disabled_and_deleted(
    dash: httpx.AsyncClient,
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shop = await create_shop(client)
    await signed_in(dash, shop.api_key)
    page = await dash.get(WEBHOOKS)
    assert page.status_code == 200 and "Aucun point de réception" in unescape(page.text)
    assert '<label for="url">' in page.text
    for event in EventType:
        assert f'name="events" value="{event.value}"' in page.text
    token = csrf_of(page.text)

    form = {"csrf": token, "url": PUBLIC_URL, "events": ["review.submitted", "review.published"]}
    added = await dash.post(WEBHOOKS, data=form)
    assert added.status_code == 201, added.text[:3000]
    secret = re.search(r'<pre id="new-secret">(whsec_[^<]+)</pre>', added.text)
    assert secret, added.text[:3000]
    [endpoint] = await _endpoints(client, shop)
    assert endpoint["url"] == PUBLIC_URL and endpoint["enabled"] is True
    assert endpoint["events"] == ["review.submitted", "review.published"]
    # Shown once: neither the list nor the endpoint's page has it again.
    for again in (WEBHOOKS, f"{WEBHOOKS}/{endpoint['id']}"):
        shown = await dash.get(again)
        assert shown.status_code == 200 and secret.group(1) not in shown.text
        assert PUBLIC_URL in shown.text

    # The delivery log: an event queued for it is listed as the API lists it.
    async with transaction(engine) as conn:
        await hooks.emit(
            conn, EventType.REVIEW_SUBMITTED, [hooks.Event(shop.id, {"rating": 5})], utcnow()
        )
    api_log = await client.get(
        f"/api/v1/shops/{shop.id}/webhook-endpoints/{endpoint['id']}/deliveries", headers=shop.auth
    )
    [delivery] = api_log.json()["items"]
    log = unescape((await dash.get(f"{WEBHOOKS}/{endpoint['id']}")).text)
    row = re.search(rf'<tr id="delivery-{delivery["id"]}">(.*?)</tr>', log, re.S)
    assert row and "Programmé" in row.group(1) and "Un avis est déposé" in row.group(1)
    assert "Tentatives : 0" in row.group(1)
    failed = unescape((await dash.get(f"{WEBHOOKS}/{endpoint['id']}?status=failed")).text)
    assert f'id="delivery-{delivery["id"]}"' not in failed and "Aucun envoi" in failed
    # Its outcome once attempted: as the delivery job records a refusal.
    async with transaction(engine) as conn:
        await conn.execute(
            update(HookDelivery)
            .where(HookDelivery.id == delivery["id"])
            .values(status="failed", attempts=1, last_status_code=500, last_error="Oups")
        )
        await conn.execute(
            insert(HookAttempt).values(
                delivery_id=delivery["id"], attempt=1, at=utcnow(), status_code=500,
                duration_ms=42, error="Oups",
            )
        )  # fmt: skip
    failed = unescape((await dash.get(f"{WEBHOOKS}/{endpoint['id']}?status=failed")).text)
    row = re.search(rf'<tr id="delivery-{delivery["id"]}">(.*?)</tr>', failed, re.S)
    assert row and "Échec" in row.group(1) and "HTTP 500" in row.group(1)
    assert "42 ms" in row.group(1) and "Oups" in row.group(1)

    disabled = await dash.post(f"{WEBHOOKS}/{endpoint['id']}/disable", data={"csrf": token})
    assert disabled.status_code == 303 and "done=webhook_disabled" in disabled.headers["location"]
    [endpoint] = await _endpoints(client, shop)
    assert endpoint["enabled"] is False and endpoint["disabled_reason"] == "manual"
    shown = unescape((await dash.get(disabled.headers["location"])).text)
    assert "Point de réception désactivé" in shown and "Réactiver" in shown
    enabled = await dash.post(f"{WEBHOOKS}/{endpoint['id']}/enable", data={"csrf": token})
    assert enabled.status_code == 303
    assert (await _endpoints(client, shop))[0]["enabled"] is True

    # The API's limit on endpoints, said at the top of the form.
    monkeypatch.setattr(hooks, "MAX_ENDPOINTS", 1)
    over = await dash.post(WEBHOOKS, data=form)
    assert over.status_code == 409
    assert "La boutique a déjà 1 points de réception" in unescape(over.text)
    monkeypatch.undo()
    assert len(await _endpoints(client, shop)) == 1

    deleted = await dash.post(f"{WEBHOOKS}/{endpoint['id']}/delete", data={"csrf": token})
    assert deleted.status_code == 303 and "done=webhook_deleted" in deleted.headers["location"]
    assert await _endpoints(client, shop) == []
    gone = await dash.post(f"{WEBHOOKS}/{endpoint['id']}/delete", data={"csrf": token})
    assert gone.status_code == 404


async def test_a_refused_url_is_said_next_to_the_field(
    dash: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await create_shop(client, default_language="it")
    await signed_in(dash, shop.api_key)
    token = csrf_of((await dash.get(WEBHOOKS)).text)
    events = ["review.submitted"]
    cases = [
        ("http://127.0.0.1:8080/hook", "127.0.0.1 porta a un indirizzo privato o locale"),
        ("http://localhost/hook", "localhost porta a un indirizzo privato o locale"),
        ("http://169.254.169.254/latest/meta-data", "(169.254.169.254)"),
        ("ftp://example.com/x", "Inserite un indirizzo completo"),
        ("https://user:pw@example.com/x", "Inserite un indirizzo completo"),
        ("https://no-such-host.invalid/x", "Il nome no-such-host.invalid non esiste"),
        ("", "Questo campo è obbligatorio."),
    ]
    for url, said in cases:
        refused = await dash.post(WEBHOOKS, data={"csrf": token, "url": url, "events": events})
        assert refused.status_code == 422, (url, refused.text[:2000])
        assert said in _field_errors(refused.text, "url"), url
        assert f'value="{url}"' in refused.text  # kept to be corrected
        assert 'name="events" value="review.submitted" checked' in refused.text
    none = await dash.post(WEBHOOKS, data={"csrf": token, "url": PUBLIC_URL})
    assert none.status_code == 422
    assert "Scegliete almeno un evento." in _field_errors(none.text, "events")
    assert await _endpoints(client, shop) == []


async def test_forms_without_their_token_change_nothing(
    dash: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await create_shop(client)
    await signed_in(dash, shop.api_key)
    token = csrf_of((await dash.get(WEBHOOKS)).text)
    added = await dash.post(
        WEBHOOKS, data={"csrf": token, "url": PUBLIC_URL, "events": ["review.submitted"]}
    )
    assert added.status_code == 201
    saved = await dash.post(f"{TEMPLATES}/request/fr", data={**TEMPLATE, "csrf": token})
    assert saved.status_code == 303
    [endpoint] = await _endpoints(client, shop)
    template = await _template(client, shop, "request", "fr")
    posts: list[tuple[str, dict[str, Any]]] = [
        (WEBHOOKS, {"url": "https://1.1.1.1/x", "events": ["review.published"]}),
        (f"{WEBHOOKS}/{endpoint['id']}/disable", {}),
        (f"{WEBHOOKS}/{endpoint['id']}/delete", {}),
        (f"{TEMPLATES}/request/fr", {**TEMPLATE, "subject": "Autre"}),
        (f"{TEMPLATES}/request/fr/delete", {}),
    ]
    for path, data in posts:
        for sent in (data, {**data, "csrf": "not-the-token"}):
            answer = await dash.post(path, data=sent)
            assert answer.status_code == 403, (path, answer.text[:500])
            assert "Formulaire expiré" in answer.text
    assert await _endpoints(client, shop) == [endpoint]
    assert await _template(client, shop, "request", "fr") == template


async def test_another_shop_neither_sees_nor_changes_them(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    owner = await create_shop(client, "La Poterie")
    async with client_of(app) as dash:
        await signed_in(dash, owner.api_key)
        token = csrf_of((await dash.get(WEBHOOKS)).text)
        form = {"csrf": token, "url": PUBLIC_URL, "events": ["review.submitted"]}
        assert (await dash.post(WEBHOOKS, data=form)).status_code == 201
        own = {**TEMPLATE, "csrf": token, "subject": "Secret de La Poterie"}
        assert (await dash.post(f"{TEMPLATES}/request/fr", data=own)).status_code == 303
    [endpoint] = await _endpoints(client, owner)
    template = await _template(client, owner, "request", "fr")

    other = await create_shop(client, "Autre Boutique")
    async with client_of(app) as dash:
        await signed_in(dash, other.api_key)
        listed = await dash.get(WEBHOOKS)
        assert PUBLIC_URL not in listed.text and endpoint["id"] not in listed.text
        token = csrf_of(listed.text)
        assert (await dash.get(f"{WEBHOOKS}/{endpoint['id']}")).status_code == 404
        for action in ("disable", "delete"):
            answer = await dash.post(f"{WEBHOOKS}/{endpoint['id']}/{action}", data={"csrf": token})
            assert answer.status_code == 404, action
        editor = await dash.get(f"{TEMPLATES}/request/fr")
        assert "Secret de La Poterie" not in editor.text
        listed = unescape((await dash.get(TEMPLATES)).text)
        row = re.search(r'<tr id="tpl-request-fr">(.*?)</tr>', listed, re.S)
        assert row and "Modèle par défaut de Relance" in row.group(1)
        reset = await dash.post(f"{TEMPLATES}/request/fr/delete", data={"csrf": token})
        assert "problem=template_not_found" in reset.headers["location"]
        mine = {**TEMPLATE, "csrf": token, "subject": "Autre sujet"}
        assert (await dash.post(f"{TEMPLATES}/request/fr", data=mine)).status_code == 303
    assert await _endpoints(client, owner) == [endpoint]
    assert await _template(client, owner, "request", "fr") == template
    assert (await _template(client, other, "request", "fr"))["subject"] == "Autre sujet"
    assert await _endpoints(client, other) == []


@pytest.mark.parametrize("language", ["de", "en", "es", "fr", "it"])
def test_every_language_s_starter_passes_the_checks(language: str) -> None:
    """The editor's starting point saves as it is in every language (the German subject was
    over the 300-byte bound)."""
    from app.dashboard.templates_pages import _starter
    from app.emailtemplates.rendering import MerchantTemplate, TemplateKind, check

    starter = MerchantTemplate(**_starter(language))
    for kind in (TemplateKind.REQUEST, TemplateKind.REMINDER):
        assert check(starter, kind) == []
