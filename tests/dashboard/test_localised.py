"""Everything the merchant reads is in the shop's language: a request's timeline (each step the
API writes, said with the dashboard's texts, its code kept visible) and the API's validation
errors next to the settings fields."""

import json
import re
from datetime import UTC, datetime, timedelta
from html import unescape

import httpx
from fastapi import FastAPI

from app.dashboard.error_texts import error_text
from app.dashboard.rendering import TEMPLATES_DIR, texts
from app.dashboard.timeline_view import STEP_KEYS, shown
from app.requests.schemas import TimelineStep
from tests.dashboard.conftest import Seed, client_of, csrf_of, signed_in
from tests.factories import create_shop, order_event, post_event

LANGUAGES = ("en", "fr", "it", "es", "de")


def _steps(html: str) -> list[tuple[str, str, str]]:
    """(code, label, the rest of the line) of each timeline step on a request's page."""
    found = re.findall(
        r'<li data-step="([^"]+)"[^>]*><time[^>]*>[^<]*</time> <strong class="step">([^<]*)'
        r"</strong>(.*?)</li>",
        html,
    )
    return [(unescape(c), unescape(label), unescape(rest)) for c, label, rest in found]


def _field_errors(html: str, field: str) -> str:
    found = re.search(rf'<div class="field-error" id="err-{field}">(.*?)</div>', html, re.S)
    assert found, (field, html[:3000])
    return unescape(found.group(1))


async def test_a_requests_timeline_speaks_the_shops_language(
    app: FastAPI, dash: httpx.AsyncClient, client: httpx.AsyncClient, seeded: Seed
) -> None:
    shop = seeded.shop
    api = f"/api/v1/shops/{shop.id}"
    assert (await post_event(client, shop, order_event(4, 1, 5))).status_code == 202
    [scheduled] = (
        await client.get(f"{api}/review-requests?status=scheduled", headers=shop.auth)
    ).json()["items"]
    await signed_in(dash, shop.api_key)
    page = await dash.get(f"/dashboard/requests/{scheduled['id']}")
    later = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    moved = await dash.post(
        f"/dashboard/requests/{scheduled['id']}/reschedule",
        data={"csrf": csrf_of(page.text), "due_at": later},
    )
    assert moved.status_code == 303

    english = set(STEP_KEYS) | {"event scheduled", "event cancelled"}
    english |= {texts("en")[key] for key in STEP_KEYS.values()}
    expected = {
        seeded.reviewed_request: {
            "created": "Demande créée",
            "scheduled": "E-mail programmé",
            "claimed": "Pris en charge pour l'envoi",
            "sent": "E-mail envoyé",
            "clicked": "Lien cliqué",
            "reviewed": "Avis reçu",
            "event scheduled": "Statut de commande reçu : demande programmée",
        },
        seeded.cancelled_request: {
            "cancelled": "E-mail annulé",
            "event cancelled": "Statut de commande reçu : demande annulée",
        },
        scheduled["id"]: {"moved": "Déplacé à la main"},
    }
    for request_id, labels in expected.items():
        html = (await dash.get(f"/dashboard/requests/{request_id}")).text
        steps = _steps(html)
        api_steps = (
            await client.get(f"{api}/review-requests/{request_id}", headers=shop.auth)
        ).json()["timeline"]
        assert len(steps) == len(api_steps) > 0, html
        shown_labels = {code: label for code, label, _ in steps}
        for code, label in labels.items():
            assert shown_labels.get(code) == label, (request_id, code, shown_labels)
        assert not english & set(shown_labels.values()), shown_labels
        # Every detail was understood (the API's words kept as the title), and the code shows.
        understood = re.findall(r'<li data-step="[^"]+" title="[^"]+">', html)
        assert len(understood) == len(api_steps), html
        for code, _, rest in steps:
            assert f'<code class="code">{code}' in rest, rest
    cancelled = unescape((await dash.get(f"/dashboard/requests/{seeded.cancelled_request}")).text)
    assert "Premier e-mail : Commande annulée" in cancelled
    assert "cancelled · order_cancelled" in cancelled
    moved_page = unescape((await dash.get(f"/dashboard/requests/{scheduled['id']}")).text)
    assert "— Reprogrammé à la main au" in moved_page and "— rescheduled" not in moved_page
    reviewed = unescape((await dash.get(f"/dashboard/requests/{seeded.reviewed_request}")).text)
    assert "Note 5/5" in reviewed and "Par l'état déclencheur, le" in reviewed

    # The same request in German once the shop's language changes; the API keeps its words.
    patched = await client.patch(
        f"{api}/settings", json={"default_language": "de"}, headers=shop.auth
    )
    assert patched.status_code == 200
    async with client_of(app) as german:
        await signed_in(german, shop.api_key)
        html = (await german.get(f"/dashboard/requests/{seeded.reviewed_request}")).text
    labels = {code: label for code, label, _ in _steps(html)}
    assert labels["created"] == "Anfrage erstellt" and labels["sent"] == "E-Mail gesendet"
    assert labels["reviewed"] == "Bewertung erhalten"
    assert labels["event scheduled"] == "Bestellstatus empfangen: Anfrage geplant"
    assert "Erste E-Mail, fällig am" in unescape(html)
    read = await client.get(f"{api}/review-requests/{seeded.reviewed_request}", headers=shop.auth)
    assert {s["step"] for s in read.json()["timeline"]} >= {"created", "sent", "reviewed"}


async def test_steps_written_by_settings_changes_are_said_too(
    dash: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    # Sundays 03:00-04:00 only: the e-mail is moved into that window; a new delay moves it.
    window = {"weekdays": [7], "start": "03:00", "end": "04:00"}
    shop = await create_shop(client, "Boutique", send_window=window, default_language="es")
    assert (await post_event(client, shop, order_event(8, 1, 5))).status_code == 202
    patched = await client.patch(
        f"/api/v1/shops/{shop.id}/settings", json={"delay": "P9D"}, headers=shop.auth
    )
    assert patched.status_code == 200
    api = f"/api/v1/shops/{shop.id}/review-requests"
    [request] = (await client.get(api, headers=shop.auth)).json()["items"]
    read = (await client.get(f"{api}/{request['id']}", headers=shop.auth)).json()
    assert {"moved into the send window", "rescheduled"} <= {s["step"] for s in read["timeline"]}
    await signed_in(dash, shop.api_key)
    html = (await dash.get(f"/dashboard/requests/{request['id']}")).text
    labels = {code: label for code, label, _ in _steps(html)}
    assert labels["moved into the send window"] == "Movido al horario de envío"
    assert labels["rescheduled"] == "Reprogramado"
    understood = re.findall(r'<li data-step="[^"]+" title="[^"]+">', html)
    assert len(understood) == len(read["timeline"]), html
    text = unescape(html)
    assert "Primer correo: el plazo terminaba el" in text
    assert "Primer correo: los ajustes de la tienda cambiaron, previsto el" in text


def test_every_shape_the_api_writes_is_said() -> None:
    """The details no HTTP test above reaches, in the API's own wording."""
    at = datetime(2026, 12, 1, 9, tzinfo=UTC)
    iso = at.isoformat()
    failed = "by hand, with fresh attempts (it had failed, smtp_unavailable: 421 (busy))"
    cases = [
        ("sent", "reminder 1 (dry run), Message-ID <a@b>", "Promemoria 1 (prova a vuoto), "),
        ("cancelled", "reminder 2: no longer in the settings", "Promemoria 2: non è più nelle "),
        ("skipped", "first e-mail, suppressed", "Prima e-mail: Indirizzo disiscritto"),
        ("failed", "first e-mail, ", "Prima e-mail: Nessun motivo"),
        ("re-queued", failed, "A mano, con nuovi tentativi (non era riuscita: Server di posta"),
        ("moved", "sent now by hand", "Invio immediato chiesto a mano"),
        ("review changed", "3 stars", "Voto 3/5"),
        ("event ignored_older", "webhook msg_1, order history None", "Webhook msg_1, cronologia"),
        ("created", f"fallback at {iso}", "Da uno stato spedito dopo il ritardo di riserva, il "),
    ]
    t = texts("it")
    for step, detail, expected in cases:
        said = shown(TimelineStep(at=at, step=step, detail=detail), t, lambda m: m.isoformat())
        assert said.known and said.detail.startswith(expected), (step, said.detail)
        assert said.label != step
    requeued = shown(TimelineStep(at=at, step="re-queued", detail=failed), t, str)
    assert requeued.detail.endswith("disponibile (421 (busy)))")
    assert requeued.reason == "smtp_unavailable"


def test_a_step_in_an_unknown_shape_keeps_the_apis_words() -> None:
    at = datetime(2026, 12, 1, 9, tzinfo=UTC)
    odd = shown(TimelineStep(at=at, step="sent", detail="something new"), texts("fr"), str)
    assert (odd.label, odd.detail, odd.known) == ("E-mail envoyé", "something new", False)
    new_kind = shown(TimelineStep(at=at, step="teleported", detail="x"), texts("fr"), str)
    assert (new_kind.label, new_kind.detail) == ("teleported", "x")
    failed = shown(
        TimelineStep(
            at=at, step="failed", detail="reminder 2, recipient_rejected: 550 no such user"
        ),
        texts("it"),
        str,
    )
    assert failed.reason == "recipient_rejected" and failed.known
    assert failed.detail.startswith("Promemoria 2: ") and "(550 no such user)" in failed.detail


async def test_settings_errors_are_said_in_the_shops_language(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    base = {
        "trigger_state_ids_text": "5",
        "cancel_state_ids_text": "6, 7",
        "delay": "P2D",
        "customer_cooldown": "P30D",
        "max_age": "P30D",
        "send_window_on": "1",
        "send_window_weekdays": ["1", "2", "3", "4", "5"],
        "send_window_start": "09:00",
        "send_window_end": "18:00",
        "default_language": "fr",
        "timezone": "Europe/Paris",
        "review_default_status": "pending",
    }
    shop = await create_shop(client, "Boutique FR")
    before = (await client.get(f"/api/v1/shops/{shop.id}/settings", headers=shop.auth)).json()
    async with client_of(app) as dash:
        await signed_in(dash, shop.api_key)
        token = csrf_of((await dash.get("/dashboard/settings")).text)
        wrong = {
            **base,
            "csrf": token,
            "delay": "P9999D",  # out of range
            "trigger_state_ids_text": "-1",
            "send_window_end": "08:00",
            "exclusions_excluded_product_ids": "douze",
            "review_default_status": "maybe",
        }
        refused = await dash.post("/dashboard/settings", data=wrong)
    assert refused.status_code == 422
    html = refused.text
    assert _field_errors(html, "delay") == (
        "<p>Saisissez une durée ISO 8601 comme P2D, PT12H ou P1DT12H, ou un nombre de secondes, "
        "d'au plus 3\u202f660 jours (ni années ni mois).</p>"
    )
    assert "Saisissez une valeur d'au moins 0." in _field_errors(html, "trigger_state_ids")
    assert "Saisissez un nombre entier." in _field_errors(html, "exclusions_excluded_product_ids")
    assert "Choisissez pending ou published." in _field_errors(html, "review_default_status")
    assert re.search(r'id="delay" name="delay" value="P9999D" aria-invalid="true"', html)
    for english in ("Input should", "Value error", "a duration must", "must be after"):
        assert english not in unescape(html), english
    window = await _post_again(app, shop.api_key, {**base, "send_window_end": "08:00"})
    assert "L'heure de fin doit être après l'heure de début." in _field_errors(
        window, "send_window"
    )
    after = (await client.get(f"/api/v1/shops/{shop.id}/settings", headers=shop.auth)).json()
    assert after == before

    italian = await create_shop(client, "Negozio", default_language="it")
    form = {**base, "default_language": "it"}
    html = await _post_again(
        app, italian.api_key, {**form, "delay": "P9999D", "send_window_holidays": "ZZ"}
    )
    assert "Inserisci una durata ISO 8601" in _field_errors(html, "delay")
    assert "Nessun calendario dei giorni festivi per questo paese" in _field_errors(
        html, "send_window_holidays"
    )
    html = await _post_again(app, italian.api_key, {**form, "cancel_state_ids_text": "5, 6"})
    assert "Gli stati 5 non possono sia attivare sia annullare una richiesta." in unescape(html)


async def test_a_state_missing_from_the_catalogue_is_said_by_its_id(
    dash: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await create_shop(client)
    states = [
        {"id": i, "names": {"fr": name}, "paid": True, "shipped": True, "delivery": True,
         "logable": True}
        for i, name in ((5, "Livré"), (6, "Annulé"))
    ]  # fmt: skip
    posted = await post_event(
        client, shop, {"type": "shop.order_states", "data": {"states": states}}
    )
    assert posted.status_code == 202
    await signed_in(dash, shop.api_key)
    token = csrf_of((await dash.get("/dashboard/settings")).text)
    form = {
        "csrf": token,
        "trigger_state_ids": ["5", "99"],
        "cancel_state_ids": ["6"],
        "delay": "P2D",
        "default_language": "fr",
        "timezone": "Europe/Paris",
        "review_default_status": "pending",
    }
    refused = await dash.post("/dashboard/settings", data=form)
    assert refused.status_code == 422
    assert "Il n'y a pas d'état de commande 99 dans le catalogue de la boutique." in (
        _field_errors(refused.text, "trigger_state_ids")
    )


async def _post_again(app: FastAPI, api_key: str, form: dict[str, object]) -> str:
    """The settings form posted by a fresh session of the shop: the refused page."""
    async with client_of(app) as dash:
        await signed_in(dash, api_key)
        token = csrf_of((await dash.get("/dashboard/settings")).text)
        refused = await dash.post("/dashboard/settings", data={**form, "csrf": token})
    assert refused.status_code == 422, refused.text[:2000]
    return refused.text


def test_an_unknown_error_type_keeps_the_apis_message() -> None:
    original = {"type": "brand_new_check", "loc": ["delay"], "msg": "Original words"}
    assert error_text(original, texts("de"), "de") == "Original words"
    own = {"type": "value_error", "loc": ["x"], "msg": "Value error, something"}
    assert error_text(own, texts("de"), "de") == "Value error, something"  # no code: as sent
    assert error_text(own, texts("de"), "de", "timezone").startswith("Geben Sie eine IANA")
    bound = {"type": "less_than_equal", "msg": "x", "ctx": {"le": 2147483647}}
    assert (
        error_text(bound, texts("fr"), "fr")
        == "Saisissez une valeur d'au plus 2\u202f147\u202f483\u202f647."
    )


def test_every_language_has_the_same_texts() -> None:
    keys = {
        language: set(json.loads((TEMPLATES_DIR / "texts" / f"{language}.json").read_text("utf-8")))
        for language in LANGUAGES
    }
    for language in LANGUAGES:
        assert keys[language] == keys["en"], (language, keys[language] ^ keys["en"])
