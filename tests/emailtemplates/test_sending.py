"""Merchant templates in e-mails that really leave: the test e-mail, and the dispatcher using a
shop's template in the customer's language, caught by a real SMTP server (aiosmtpd)."""

from email.message import EmailMessage

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.requests.models import Delivery, ReviewRequest
from tests.dispatch.test_dispatch import LATER, at, dispatcher
from tests.emailtemplates.test_templates_api import TEMPLATE, url
from tests.factories import ClientFor, create_shop, order_event, post_event
from tests.problems import assert_problem, assert_validation_problem
from tests.smtp_sink import smtp_sink


def parts(message: EmailMessage) -> tuple[str, str]:
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert isinstance(text, EmailMessage) and isinstance(html, EmailMessage)
    return text.get_content(), html.get_content()


async def rows(engine: AsyncEngine) -> tuple[int, int]:
    async with engine.connect() as conn:
        requests = await conn.scalar(select(func.count()).select_from(ReviewRequest))
        deliveries = await conn.scalar(select(func.count()).select_from(Delivery))
    return int(requests or 0), int(deliveries or 0)


async def test_test_email_arrives_marked_and_is_recorded_nowhere(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings, client_for: ClientFor
) -> None:
    shop = await create_shop(client, from_email="avis@boutique.example", from_name="La Boutique")
    assert (await client.put(url(shop), json=TEMPLATE, headers=shop.auth)).status_code == 201
    with smtp_sink() as (sink, port):
        smtp = await client_for(
            settings.model_copy(update={"mail_url": f"smtp://127.0.0.1:{port}"})
        )
        response = await smtp.post(
            f"/api/v1/shops/{shop.id}/test-email",
            json={"to": "merchant@example.fr", "kind": "request", "language": "fr"},
            headers=shop.auth,
        )
        assert response.status_code == 202, response.text
        default = await smtp.post(
            f"/api/v1/shops/{shop.id}/test-email",
            json={"to": "merchant@example.fr", "kind": "reminder", "language": "it"},
            headers=shop.auth,
        )
        assert default.status_code == 202, default.text
    body = response.json()
    assert body["status"] == "sent" and body["template"] == "merchant"
    assert default.json()["template"] == "default"
    mine, theirs = sink.messages
    assert sink.envelopes[0] == ("avis@boutique.example", ["merchant@example.fr"])
    assert mine["X-Relance-Test"] == "1" and theirs["X-Relance-Test"] == "1"
    assert mine["Message-ID"] == body["message_id"]
    assert mine["Subject"] == "Ma Boutique asks about XKBKNABJK"
    assert mine["From"].addresses[0].display_name == "La Boutique"
    assert mine["List-Unsubscribe"].startswith("<https://reviews.example.test/u/sample.")
    text, html = parts(mine)
    assert "Hello Marie," in text and "Hello Marie Dupont" in html
    assert theirs["Content-Language"] == "it" and "Giulia" in parts(theirs)[0]
    # Counted nowhere: no request, no delivery.
    assert await rows(engine) == (0, 0)
    listed = await client.get(f"/api/v1/shops/{shop.id}/review-requests", headers=shop.auth)
    assert listed.json()["items"] == []


async def test_a_refused_test_email_is_502(
    client: httpx.AsyncClient, settings: Settings, client_for: ClientFor
) -> None:
    shop = await create_shop(client)
    with smtp_sink() as (sink, port):
        sink.rcpt_reply = "550 5.1.1 No such user"
        smtp = await client_for(
            settings.model_copy(update={"mail_url": f"smtp://127.0.0.1:{port}"})
        )
        response = await smtp.post(
            f"/api/v1/shops/{shop.id}/test-email",
            json={"to": "nobody@example.fr", "kind": "request", "language": "fr"},
            headers=shop.auth,
        )
    assert "550" in assert_problem(response, 502)["detail"]
    assert sink.messages == []


async def test_test_email_checks_the_key_before_the_body(client: httpx.AsyncClient) -> None:
    shop = await create_shop(client)
    path = f"/api/v1/shops/{shop.id}/test-email"
    json_type = {"content-type": "application/json"}
    assert_problem(await client.post(path, content=b"{not json", headers=json_type), 401)
    assert_validation_problem(
        await client.post(path, content=b"{not json", headers=json_type | shop.auth)
    )
    bad = await client.post(
        path, json={"to": "not an address", "kind": "request", "language": "fr"}, headers=shop.auth
    )
    assert_validation_problem(bad, ["body", "to"])


async def test_due_requests_use_the_template_of_their_language_else_the_defaults(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    shop = await create_shop(client, reminders=["P1D"])
    assert (await client.put(url(shop), json=TEMPLATE, headers=shop.auth)).status_code == 201
    reminder = TEMPLATE | {"subject": "{% if is_reminder %}Reminder{% endif %} {{ lastname }}"}
    saved = await client.put(url(shop, "reminder_1"), json=reminder, headers=shop.auth)
    assert saved.status_code == 201, saved.text
    french = order_event(1042, 1, 5, email="marie@example.fr", language="fr")
    german = order_event(1043, 2, 5, email="hans@example.de", language="de", firstname="Hans")
    for event in (french, german):
        assert (await post_event(client, shop, event)).status_code == 202
    with smtp_sink() as (sink, port):
        worker = dispatcher(engine, settings, port)
        assert (await worker.tick(now=at(LATER))).sent == 2
        assert (await worker.tick(now=at(LATER * 2))).sent == 2  # the reminders
    by_recipient: dict[str, list[EmailMessage]] = {}
    for message in sink.messages:
        by_recipient.setdefault(str(message["To"]), []).append(message)
    (first_fr, reminder_fr) = by_recipient["marie@example.fr"]
    (first_de, reminder_de) = by_recipient["hans@example.de"]

    assert first_fr["Subject"] == "Ma Boutique asks about REF1042"
    text, html = parts(first_fr)
    assert "Hello Marie Dupont" in html
    assert html.count("https://reviews.example.test/r/") == 6
    assert "https://reviews.example.test/u/" in text
    assert first_fr["List-Unsubscribe"].startswith("<https://reviews.example.test/u/")
    assert "X-Relance-Test" not in first_fr
    assert reminder_fr["Subject"] == "Reminder Dupont"

    # German customers get Relance's own German e-mails: no German template was saved.
    assert "REF1043" in first_de["Subject"] and "asks about" not in first_de["Subject"]
    assert "Hallo Hans" in parts(first_de)[0]
    assert "Reminder" not in reminder_de["Subject"]
    assert first_de["Content-Language"] == "de"
