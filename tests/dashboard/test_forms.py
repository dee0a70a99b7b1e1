"""The dashboard's forms over HTTP: the settings form against the API's validation, the
manual actions on a request, moderation and the public reply."""

import re
from datetime import datetime, timedelta
from html import unescape
from zoneinfo import ZoneInfo

import httpx

from tests.dashboard.conftest import Seed, csrf_of, signed_in
from tests.factories import create_shop, order_event, post_event


async def test_the_settings_form_saves_through_the_api_and_shows_its_errors(
    dash: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await create_shop(client, default_language="en")
    await signed_in(dash, shop.api_key)
    page = await dash.get("/dashboard/settings")
    assert 'lang="en"' in page.text and "Delay after the trigger" in page.text
    token = csrf_of(page.text)
    form = {
        "csrf": token,
        "trigger_state_ids_text": "5",
        "cancel_state_ids_text": "6, 7",
        "delay": "P3D",
        "require_paid": "1",
        "reminders": "P7D",
        "customer_cooldown": "P30D",
        "max_age": "",
        "fallback_delay": "",
        "send_window_on": "1",
        "send_window_weekdays": ["1", "2", "3", "4", "5"],
        "send_window_start": "09:00",
        "send_window_end": "18:00",
        "send_window_holidays": "FR",
        "exclusions_blocked_emails": "*@marketplace.amazon.*\n",
        "exclusions_excluded_product_ids": "12",
        "exclusions_excluded_group_ids": "",
        "exclusions_min_order_total": "10.00",
        "default_language": "en",
        "timezone": "Europe/Paris",
        "review_default_status": "pending",
        "review_nps": "1",
    }
    saved = await dash.post("/dashboard/settings", data=form)
    assert saved.status_code == 303, saved.text
    assert "Settings saved." in (await dash.get(saved.headers["location"])).text
    read = (await client.get(f"/api/v1/shops/{shop.id}/settings", headers=shop.auth)).json()
    assert read["delay"] == "P3D" and read["reminders"] == ["P7D"]
    assert read["cancel_state_ids"] == [6, 7] and read["max_age"] is None
    assert read["send_window"]["end"] == "18:00:00" and read["send_window"]["holidays"] == "FR"
    assert read["exclusions"]["blocked_emails"] == ["*@marketplace.amazon.*"]
    assert read["exclusions"]["min_order_total"] == "10.00"
    assert read["review_product_ratings"] is False and read["review_nps"] is True

    wrong = {**form, "delay": "soon", "send_window_end": "08:00", "cancel_state_ids_text": "5"}
    refused = await dash.post("/dashboard/settings", data=wrong)
    assert refused.status_code == 422
    text = unescape(refused.text)
    assert re.search(r'id="delay" name="delay" value="soon" aria-invalid="true"', text)
    assert 'id="err-delay"' in text and "ISO 8601" in text
    assert "Nothing was saved." in text
    again = (await client.get(f"/api/v1/shops/{shop.id}/settings", headers=shop.auth)).json()
    assert again == read

    disjoint = await dash.post("/dashboard/settings", data={**form, "cancel_state_ids_text": "5"})
    assert disjoint.status_code == 422
    assert "cannot both trigger and cancel" in unescape(disjoint.text)


async def test_the_settings_form_names_states_from_the_catalogue(
    dash: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shop = await create_shop(client)
    states = [
        {"id": i, "names": {"fr": name, "en": name}, "paid": i == 5, "shipped": i == 5,
         "delivery": i == 5, "logable": i == 5}
        for i, name in ((5, "Livré"), (6, "Annulé"), (7, "Remboursé"), (8, "Erreur de paiement"),
                        (12, "Livré en point relais"))
    ]  # fmt: skip
    posted = await post_event(
        client, shop, {"type": "shop.order_states", "data": {"states": states}}
    )
    assert posted.status_code == 202, posted.text
    await signed_in(dash, shop.api_key)
    page = await dash.get("/dashboard/settings")
    assert "Livré en point relais" in page.text
    assert re.search(r'name="trigger_state_ids" value="5" checked', page.text)
    form = {
        "csrf": csrf_of(page.text),
        "trigger_state_ids": ["5", "12"],
        "cancel_state_ids": ["6", "7", "8"],
        "delay": "P2D",
        "customer_cooldown": "P30D",
        "max_age": "P30D",
        "default_language": "fr",
        "timezone": "Europe/Paris",
        "review_default_status": "pending",
    }
    assert (await dash.post("/dashboard/settings", data=form)).status_code == 303
    read = (await client.get(f"/api/v1/shops/{shop.id}/settings", headers=shop.auth)).json()
    assert read["trigger_state_ids"] == [5, 12] and read["send_window"] is None


async def test_manual_actions_moderation_and_reply(
    dash: httpx.AsyncClient, client: httpx.AsyncClient, seeded: Seed
) -> None:
    shop = seeded.shop
    assert (await post_event(client, shop, order_event(4, 1, 5))).status_code == 202
    api = f"/api/v1/shops/{shop.id}"
    [scheduled] = (
        await client.get(f"{api}/review-requests?status=scheduled", headers=shop.auth)
    ).json()["items"]
    await signed_in(dash, shop.api_key)
    detail = f"/dashboard/requests/{scheduled['id']}"
    page = await dash.get(detail)
    token = csrf_of(page.text)
    assert "Envoyer maintenant" in page.text and "Reprogrammer" in page.text

    later = (datetime.now(ZoneInfo("Europe/Paris")) + timedelta(days=5)).replace(microsecond=0)
    moved = await dash.post(
        f"{detail}/reschedule", data={"csrf": token, "due_at": later.strftime("%Y-%m-%dT%H:%M")}
    )
    assert moved.status_code == 303 and "done=reschedule" in moved.headers["location"]
    read = (await client.get(f"{api}/review-requests/{scheduled['id']}", headers=shop.auth)).json()
    due = datetime.fromisoformat(read["due_at"])
    assert abs((due - later.replace(second=0)).total_seconds()) < 1
    assert any(s["step"] == "moved" for s in read["timeline"])

    cancelled = await dash.post(f"{detail}/cancel", data={"csrf": token})
    assert cancelled.status_code == 303
    after = await dash.get(cancelled.headers["location"])
    assert "plus rien ne sera envoyé" in unescape(after.text)
    assert "Envoyer maintenant" not in after.text
    again = await dash.post(f"{detail}/cancel", data={"csrf": token})
    assert "problem=conflict_cancel" in again.headers["location"]
    read = (await client.get(f"{api}/review-requests/{scheduled['id']}", headers=shop.auth)).json()
    assert (read["status"], read["reason"]) == ("cancelled", "manual")

    reviews = "/dashboard/reviews"
    published = await dash.post(
        f"{reviews}/{seeded.review_id}", data={"csrf": token, "status": "published"}
    )
    assert published.status_code == 303
    replied = await dash.post(
        f"{reviews}/{seeded.review_id}", data={"csrf": token, "reply": "Merci Marie !"}
    )
    assert replied.status_code == 303
    [review] = (await client.get(f"{api}/reviews", headers=shop.auth)).json()["items"]
    assert (review["status"], review["reply"]) == ("published", "Merci Marie !")
    shown = unescape((await dash.get(f"{reviews}?status=published")).text)
    assert "Merci Marie !" in shown and "Très beau mug." in shown


def test_the_pager_keeps_the_filters_both_ways() -> None:
    """Back to the first page of a filtered list stays filtered (it used to drop them)."""
    from app.dashboard.views import pager

    filters = {"status": "skipped", "reason": "", "level": None}
    assert pager("/dashboard/requests", filters, False, "c2") == {
        "next_url": "/dashboard/requests?status=skipped&cursor=c2",
        "first_url": "/dashboard/requests?status=skipped",
    }
    assert pager("/dashboard/requests", filters, True, None) == {
        "next_url": None,
        "first_url": None,
    }
