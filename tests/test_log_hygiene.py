"""No e-mail address, customer name or secret reaches the logs, even on the error paths."""

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.dispatch.jobs import Dispatcher
from app.logs import JsonFormatter, mask_emails, quiet_libraries
from app.shops.models import Shop, ShopApiKey
from tests.factories import create_shop, order_event, post_event

# Words that must never appear in a log line, in any case.
LOCAL_PART = "zephyrine.secretaddress"
EMAIL = f"{LOCAL_PART}@exämple.fr"
FIRSTNAME = "Zéphyrine"
LASTNAME = "Dupont"  # the factory's last name


def formatted(caplog: pytest.LogCaptureFixture) -> str:
    """Every captured record as the service writes it (JSON lines, masked)."""
    formatter = JsonFormatter()
    return "\n".join(formatter.format(record) for record in caplog.records)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("to marie@example.fr.", "to m***@example.fr."),
        ("to mårie@exämple.fr,", "to m***@exämple.fr,"),
        ("<ÉLOÏSE.x@ex.fr>", "<É***@ex.fr>"),
        ("'user+tag@sub.example.co.uk'", "'u***@sub.example.co.uk'"),
    ],
)
def test_every_address_is_masked(text: str, masked: str) -> None:
    assert mask_emails(text) == masked


async def test_database_errors_do_not_carry_their_parameters(engine: AsyncEngine) -> None:
    # A constraint error on a row holding personal data: its message reaches the logs.
    async with engine.begin() as conn:
        now = datetime.now(UTC)
        await conn.execute(
            insert(Shop).values(id="shp_logs", name="n", timezone="UTC", language="fr", settings={})
        )
        await conn.execute(
            insert(ShopApiKey).values(shop_id="shp_logs", key_hash="h" * 64, prefix="p")
        )
    with pytest.raises(IntegrityError) as caught:
        async with engine.begin() as conn:
            await conn.execute(
                insert(ShopApiKey).values(
                    shop_id="shp_logs", key_hash="h" * 64, prefix=EMAIL[:16], created_at=now
                )
            )
    assert EMAIL[:16] not in str(caught.value)
    assert "hidden" in str(caught.value)


async def test_a_whole_flow_with_failures_logs_no_personal_data_or_secret(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    settings: Settings,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    quiet_libraries()  # as `relance serve` and `relance worker` set them
    shop = await create_shop(client)
    event = order_event(1, 1, 5, email=EMAIL, firstname=FIRSTNAME)
    assert (await post_event(client, shop, event)).status_code == 202
    # A second order whose delivery will fail inside the dispatcher (not an SMTP error).
    other = order_event(2, 2, 5, email=EMAIL, firstname=FIRSTNAME)
    assert (await post_event(client, shop, other)).status_code == 202
    # Bad signature, bad key, bad body: the refusals are logged, never what was sent.
    assert (
        await client.post(
            f"/webhooks/prestashop/{shop.id}",
            content=b'{"x": "' + EMAIL.encode() + b'"}',
            headers={"webhook-id": "m", "webhook-timestamp": "1", "webhook-signature": "v1,x"},
        )
    ).status_code == 401

    # The shop's stored settings go bad (as an older version could have left them).
    async with engine.begin() as conn:
        await conn.execute(
            update(Shop)
            .where(Shop.id == shop.id)
            .values(
                settings={"max_age": "P9999999999D", "from_name": FIRSTNAME},
                updated_at=datetime.now(UTC),
            )
        )
    worker = Dispatcher(engine, settings.model_copy(update={"mail_url": f"file:{tmp_path}"}))
    stats = await worker.tick(now=datetime.now(UTC) + timedelta(days=3))
    assert stats.retried == 2  # both deliveries hit the internal error, and were logged

    logs = formatted(caplog).lower()
    assert "internal error" in logs
    for secret in (
        LOCAL_PART,
        FIRSTNAME.lower(),
        LASTNAME.lower(),
        shop.api_key.lower(),
        shop.webhook_secret.lower(),
        shop.webhook_secret.removeprefix("whsec_").lower(),
        settings.secret_key.lower(),
    ):
        assert secret not in logs, secret
