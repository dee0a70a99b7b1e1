"""The rating link of an agent reply, over HTTP: the form in the ticket's language, what a POST
records (read back through the API), a form sent again with what is wrong, refused tokens."""

from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import httpx

from app.security import REVIEW, sign_token
from app.tickets.ratings import TICKET_RATING
from tests.factories import ShopInfo, create_shop
from tests.tickets.test_tickets_api import message, new_ticket, paris, read

FORM = {"content-type": "application/x-www-form-urlencoded"}


class Page(HTMLParser):
    """The page's language, form action, radio groups (values offered, value checked), and
    whether it holds a script."""

    def __init__(self) -> None:
        super().__init__()
        self.lang: str | None = None
        self.action: str | None = None
        self.radios: dict[str, list[str]] = {}
        self.checked: dict[str, str] = {}
        self.script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang")
        elif tag == "form":
            self.action = a.get("action")
        elif tag == "input" and a.get("type") == "radio":
            name, value = a["name"] or "", a["value"] or ""
            self.radios.setdefault(name, []).append(value)
            if "checked" in a:
                self.checked[name] = value
        elif tag == "script":
            self.script = True


def page_of(html: str) -> Page:
    parser = Page()
    parser.feed(html)
    return parser


async def reply_link(
    client: httpx.AsyncClient, language: str = "it"
) -> tuple[ShopInfo, int, dict[str, Any]]:
    shop = await create_shop(client)
    ticket = await new_ticket(client, shop, language=language)
    await message(client, shop, ticket["id"], "m-1", "customer", paris(9, 9), body="Dov'è?")
    reply = await message(client, shop, ticket["id"], "m-2", "agent", paris(9, 10), body="Qui.")
    return shop, ticket["id"], reply


def path_of(rating_url: str) -> str:
    return urlsplit(rating_url).path


async def test_the_link_shows_a_form_in_the_ticket_s_language(client: httpx.AsyncClient) -> None:
    _, _, reply = await reply_link(client, "it")
    link = path_of(reply["rating_url"])
    response = await client.get(link)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    page = page_of(response.text)
    assert page.lang == "it"
    assert "Valuta la nostra risposta" in response.text
    assert page.action == link
    stars = ["5", "4", "3", "2", "1"]
    assert page.radios == {
        "speed": stars,
        "quality": stars,
        "csat": ["1", "2", "3", "4", "5"],
        "nps": [str(n) for n in range(11)],
    }
    assert page.checked == {}
    assert not page.script  # works without JavaScript


async def test_a_post_records_the_ratings_and_the_ticket_s_satisfaction(
    client: httpx.AsyncClient,
) -> None:
    shop, ticket_id, reply = await reply_link(client, "de")
    link = path_of(reply["rating_url"])
    sent = await client.post(link, content="speed=4&quality=5&csat=5&nps=9", headers=FORM)
    assert sent.status_code == 200, sent.text
    assert "Ihre Bewertung wurde gespeichert" in sent.text
    detail = await read(client, shop, ticket_id)
    rated = detail["messages"][1]
    assert (rated["speed_rating"], rated["quality_rating"]) == (4, 5)
    assert (detail["csat"], detail["nps"]) == (5, 9)
    # Rated again without the optional questions: the ratings change, CSAT and NPS stay.
    again = await client.post(link, content="speed=2&quality=3&csat=&nps=", headers=FORM)
    assert again.status_code == 200, again.text
    detail = await read(client, shop, ticket_id)
    assert (detail["messages"][1]["speed_rating"], detail["csat"], detail["nps"]) == (2, 5, 9)
    # The form shows what was chosen.
    page = page_of((await client.get(link)).text)
    assert page.checked == {"speed": "2", "quality": "3", "csat": "5", "nps": "9"}


async def test_what_is_wrong_is_said_and_nothing_recorded(client: httpx.AsyncClient) -> None:
    shop, ticket_id, reply = await reply_link(client, "fr")
    link = path_of(reply["rating_url"])
    response = await client.post(link, content="quality=4&nps=12", headers=FORM)
    assert response.status_code == 422
    assert "Merci de noter la rapidité de notre réponse" in response.text
    assert "La note de recommandation doit aller de 0 à 10." in response.text
    assert page_of(response.text).checked == {"quality": "4"}  # kept for the second try
    detail = await read(client, shop, ticket_id)
    assert (detail["messages"][1]["quality_rating"], detail["nps"]) == (None, None)


async def test_a_tampered_or_foreign_token_is_a_404_page(
    client: httpx.AsyncClient, settings: Any
) -> None:
    shop, ticket_id, reply = await reply_link(client, "es")
    link = path_of(reply["rating_url"])
    value, _, mac = link.removeprefix("/t/").rpartition(".")
    customer_id = (await read(client, shop, ticket_id))["messages"][0]["id"]
    refused = [
        f"/t/{value}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}",  # signature altered
        f"/t/{int(value) + 1}.{mac}",  # another message, same signature
        f"/t/{sign_token(settings.secret_key, REVIEW, value)}",  # signed for reviews
        f"/t/{sign_token(settings.secret_key, TICKET_RATING, str(customer_id))}",  # no reply
        f"/t/{sign_token(settings.secret_key, TICKET_RATING, '99999999999999999999')}",
        "/t/" + "x" * 300,
    ]
    spanish = {"accept-language": "es-ES,es;q=0.9"}
    for bad in refused:
        for response in (
            await client.get(bad, headers=spanish),
            await client.post(bad, content="speed=5&quality=5", headers=FORM | spanish),
        ):
            assert response.status_code == 404, bad
            assert response.headers["content-type"].startswith("text/html")
            assert "Enlace no encontrado" in response.text
    detail = await read(client, shop, ticket_id)
    assert [m["speed_rating"] for m in detail["messages"]] == [None, None]


async def test_the_pages_are_not_in_the_api_document(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert not [p for p in document["paths"] if p.startswith("/t/")]
    assert "/api/v1/shops/{shop_id}/tickets/{ticket_id}/messages" in document["paths"]
