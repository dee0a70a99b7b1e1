"""A shop's own SMTP server: its e-mails go there, with its credentials; others' do not."""

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.shops.models import ShopMailServer
from tests.dispatch.test_dispatch import LATER, at, dispatcher
from tests.factories import create_shop, order_event, post_event
from tests.problems import assert_problem, assert_validation_problem
from tests.smtp_sink import smtp_sink


async def test_the_url_is_kept_secret_and_checked(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    shop = await create_shop(client)
    url = f"/api/v1/shops/{shop.id}/mail-server"
    assert_problem(await client.get(url, headers=shop.auth), 404)
    put = await client.put(
        url, json={"url": "smtp+starttls://avis%40boutique.fr:s3cr3t-pw@mail.boutique.fr"},
        headers=shop.auth,
    )  # fmt: skip
    assert put.status_code == 200, put.text
    assert put.json() == {
        "scheme": "smtp+starttls",
        "host": "mail.boutique.fr",
        "port": 587,
        "username": "avis@boutique.fr",
        "max_connections": None,
    }
    assert "s3cr3t" not in put.text
    assert (await client.get(url, headers=shop.auth)).json() == put.json()
    async with engine.connect() as conn:
        stored = await conn.scalar(select(ShopMailServer.url_encrypted))
    assert stored is not None and "s3cr3t" not in stored
    for bad in ("http://mail.boutique.fr", "smtp://", "smtp://host:99999", "not a url"):
        response = await client.put(url, json={"url": bad}, headers=shop.auth)
        assert_validation_problem(response, ["body", "url"])
    for bad_limit in (0, 201, "many", 2.5):
        response = await client.put(
            url, json={"url": "smtp://mail.boutique.fr", "max_connections": bad_limit},
            headers=shop.auth,
        )  # fmt: skip
        assert_validation_problem(response, ["body", "max_connections"])
    other = await create_shop(client, name="Autre")
    assert_problem(await client.get(url, headers=other.auth), 404)
    assert (await client.delete(url, headers=shop.auth)).status_code == 204
    assert_problem(await client.get(url, headers=shop.auth), 404)


async def test_each_shop_s_emails_go_to_its_own_server(
    client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings
) -> None:
    own = await create_shop(client, name="Propre")
    default = await create_shop(client, name="Défaut")
    for shop in (own, default):
        assert (await post_event(client, shop, order_event(1, 1, 5))).status_code == 202
    with (
        smtp_sink(credentials=("avis", "pw")) as (own_sink, own_port),
        smtp_sink() as (
            default_sink,
            default_port,
        ),
    ):
        put = await client.put(
            f"/api/v1/shops/{own.id}/mail-server",
            json={"url": f"smtp://avis:pw@127.0.0.1:{own_port}"},
            headers=own.auth,
        )
        assert put.status_code == 200
        stats = await dispatcher(engine, settings, default_port).tick(now=at(LATER))
    assert stats.sent == 2
    assert [m["From"].addresses[0].display_name for m in own_sink.messages] == ["Propre"]
    assert [m["From"].addresses[0].display_name for m in default_sink.messages] == ["Défaut"]
