"""The pure parts of outgoing webhooks: the address rule, the back-off, the signature."""

import ipaddress
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook

from app.hooks.addresses import first_allowed, refused, url_problem
from app.hooks.queue import next_due
from app.hooks.signing import headers
from app.security import new_webhook_secret

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "reserved"),
        ("93.184.216.34", None),
        ("2606:4700::1111", None),
    ],
)
def test_the_address_rule(address: str, why: str | None) -> None:
    assert refused(ipaddress.ip_address(address)) == why


def test_one_refused_address_refuses_the_name() -> None:
    assert first_allowed(["93.184.216.34", "10.0.0.1"], False)[0] is None
    assert first_allowed(["93.184.216.34", "10.0.0.1"], True) == ("93.184.216.34", None)
    assert first_allowed([], True) == (None, "does not resolve")


@pytest.mark.parametrize(
    "url",
    ["ftp://x.example/", "https://", "https://u:p@x.example/", "https://x.example/#f",
     "https://x.example:99999/", "https://x.example/a b"],
)  # fmt: skip
def test_urls_refused_by_their_text(url: str) -> None:
    assert url_problem(url) is not None


def test_back_off_doubles_capped_and_ends_at_24_hours() -> None:
    gaps = []
    at, attempts = T0, 1
    while (due := next_due(attempts, T0, at)) is not None:
        gaps.append(due - at)
        at, attempts = due, attempts + 1
    assert gaps[:4] == [timedelta(seconds=s) for s in (30, 60, 120, 240)]
    assert max(gaps) == timedelta(hours=1)
    assert at == T0 + timedelta(hours=24)


def test_every_secret_signs_and_the_reference_package_verifies_each() -> None:
    old, new = new_webhook_secret(), new_webhook_secret()
    body = b'{"type":"review.submitted","timestamp":"x","data":{}}'
    now = int(datetime.now(UTC).timestamp())
    signed = headers([new, old], "msg_1", now, body)
    assert len(signed["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        assert Webhook(secret).verify(body, signed) == {
            "type": "review.submitted",
            "timestamp": "x",
            "data": {},
        }
