"""The MIME message: headers survive a round trip through a standard parser."""

import email
import email.policy
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from app.languages import LANGUAGES, pick_language
from app.mail.message import build
from app.mail.templates import Rendered, available_languages, render_review_request

LONG = "Boutique Démo : que pensez-vous de votre commande DEMO601631 de chez nous, vraiment ?"


@pytest.mark.parametrize("subject", ["Plain subject", "Boutique Démo : avis ?", LONG])
def test_headers_and_bodies_round_trip(subject: str) -> None:
    out = build(
        rendered=Rendered(subject, "Bonjour Zoë", "<p>Bonjour Zoë</p>"),
        to="zoe@example.fr",
        from_email="avis@shop.example",
        from_name="Boutique Démo",
        reply_to="sav@shop.example",
        message_id="<relance.1.shp_x@shop.example>",
        date=datetime(2026, 11, 20, 10, 0, tzinfo=UTC),
        language="fr",
    )
    message = email.message_from_bytes(out.data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert message["Subject"] == subject
    assert message["From"].addresses[0].display_name == "Boutique Démo"
    assert message["Reply-To"] == "sav@shop.example"
    assert message["Message-ID"] == out.message_id
    assert message["Date"].datetime == datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    assert message["Content-Language"] == "fr"
    assert message.get_content_type() == "multipart/alternative"
    plain, html = message.get_body(("plain",)), message.get_body(("html",))
    assert isinstance(plain, EmailMessage) and isinstance(html, EmailMessage)
    assert plain.get_content().strip() == "Bonjour Zoë"
    assert html.get_content().strip() == "<p>Bonjour Zoë</p>"


@pytest.mark.parametrize("language", ["fr", "en", "it", "es", "de"])
def test_every_language_renders_and_escapes(language: str) -> None:
    context = {
        "shop_name": "Café & Co",
        "firstname": "<b>Zoë</b>",
        "order_reference": "REF1",
        "order_date": "1 janvier 2026",
        "products": [{"name": "Mug", "url": None, "image_url": None, "quantity": 1}],
        "review_url": "https://r.example/r/tok",
        "star_urls": [f"https://r.example/r/tok?rating={n}" for n in range(1, 6)],
        "unsubscribe_url": "https://r.example/u/tok",
        "is_reminder": False,
    }
    rendered = render_review_request(language, context)
    assert "REF1" in rendered.subject and "\n" not in rendered.subject
    assert "<b>Zoë</b>" not in rendered.html and "&lt;b&gt;Zoë&lt;/b&gt;" in rendered.html
    assert "https://r.example/r/tok?rating=5" in rendered.html
    assert "https://r.example/r/tok" in rendered.text
    assert 'href="https://r.example/u/tok"' in rendered.html
    assert "https://r.example/u/tok" in rendered.text


def test_language_falls_back_to_shop_then_english() -> None:
    assert pick_language("de", "fr") == "de"
    assert pick_language("nl", "it") == "it"
    assert pick_language("nl", "pt") == "en"
    assert pick_language(None, "es") == "es"


def test_every_language_offered_has_its_templates() -> None:
    assert available_languages() == LANGUAGES
