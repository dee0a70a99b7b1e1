"""The PHP module's signer and sender against the Python side (needs `php`; slow).

The PHP signer's signatures are verified by `app.webhooks.signature.verify` and by the
reference `standardwebhooks` package; Relance's own signer produces signatures the PHP
verifier accepts; `send-event.php` posts a Delivered event to a running `relance serve` and
the review request appears in the API.
"""

import base64
import json
import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from app.errors import InvalidSignature
from app.hooks.signing import headers as hook_headers
from app.webhooks.signature import sign, verify
from tests.factories import order_event
from tests.test_end_to_end import Server, server, sink, wait_for  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CLASSES = ROOT / "prestashop" / "relance" / "classes"
SEND_EVENT = ROOT / "prestashop" / "tools" / "send-event.php"
PHP = shutil.which("php")


if PHP is None:
    if os.environ.get("RELANCE_TEST_REQUIRE_PHP") == "1":
        pytest.fail("php is not installed and RELANCE_TEST_REQUIRE_PHP=1", pytrace=False)
    pytest.skip("php is not installed", allow_module_level=True)


def run_php(code: str, stdin: str) -> str:
    """Run PHP code with the module's signer loaded; JSON in on stdin, out on stdout."""
    prelude = f"define('_PS_VERSION_', 'test'); require '{CLASSES}/RelanceSigner.php';"
    done = subprocess.run(
        [str(PHP), "-r", prelude + code], input=stdin, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


PAYLOADS: list[Any] = [
    {"type": "ping", "timestamp": "2026-11-20T10:15:00+01:00", "data": {}},
    order_event(1042, 5531, 5, email="mårie@exämple.fr"),
    {"type": "shop.order_states", "data": {"states": [{"id": 5, "names": {"fr": "Livré"}}]}},
    {"type": "x", "data": {"text": 'emoji 🎉, quotes " and \\ backslash, / slash, \u2028'}},
]


def test_php_signatures_verify_in_python_and_standardwebhooks() -> None:
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    now = int(time.time())
    bodies = [json.dumps(p, ensure_ascii=False) for p in PAYLOADS] + ["", " not json at all"]
    cases = [{"id": f"msg_{i}_{secrets.token_hex(4)}", "body": b} for i, b in enumerate(bodies)]
    out = run_php(
        f"$s = new RelanceSigner('{secret}'); $r = [];"
        " foreach (json_decode(stream_get_contents(STDIN), true) as $c) {"
        f"  $r[] = $s->headers($c['id'], {now}, $c['body']); }}"
        " echo json_encode($r);",
        json.dumps(cases),
    )
    signed = json.loads(out)
    assert len(signed) == len(cases)
    key = base64.b64decode(secret.removeprefix("whsec_"))
    reference = Webhook(secret)
    for case, headers in zip(cases, signed, strict=True):
        body = case["body"].encode()
        assert headers["webhook-id"] == case["id"]
        assert verify(headers, body, (key,), now) == case["id"]
        if case["body"] in ("", " not json at all"):
            # The package checks the signature, then parses the body as JSON.
            with pytest.raises(json.JSONDecodeError):
                reference.verify(body, headers)
        else:
            assert reference.verify(body, headers) == json.loads(body)
        with pytest.raises(InvalidSignature):
            verify(headers, body + b" ", (key,), now)


def test_python_signatures_verify_in_php() -> None:
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    key = base64.b64decode(secret.removeprefix("whsec_"))
    now = int(time.time())
    cases = []
    for i, payload in enumerate(PAYLOADS):
        body = json.dumps(payload, ensure_ascii=False)
        msg_id = f"msg_py_{i}"
        headers = {
            "webhook-id": msg_id,
            "webhook-timestamp": str(now),
            "webhook-signature": sign(key, msg_id, now, body.encode()),
        }
        cases.append({"headers": headers, "body": body, "expect": True})
        tampered = {**headers, "webhook-id": msg_id + "x"}
        cases.append({"headers": tampered, "body": body, "expect": False})
        stale = {**headers, "webhook-timestamp": str(now - 301)}
        stale["webhook-signature"] = sign(key, msg_id, now - 301, body.encode())
        cases.append({"headers": stale, "body": body, "expect": False})
    out = run_php(
        f"$s = new RelanceSigner('{secret}'); $r = [];"
        " foreach (json_decode(stream_get_contents(STDIN), true) as $c) {"
        f"  $r[] = $s->verify($c['headers'], $c['body'], {now}); }}"
        " echo json_encode($r);",
        json.dumps(cases),
    )
    assert json.loads(out) == [c["expect"] for c in cases]


def test_outgoing_webhook_signatures_verify_in_php() -> None:
    """Relance's outgoing webhooks (`app.hooks.signing`), during a secret rotation's overlap:
    signed under both secrets, each one alone verifies them in PHP; another secret does not."""
    new, old, other = (
        "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode() for _ in range(3)
    )
    now = int(time.time())
    cases = []
    for i, payload in enumerate(PAYLOADS):
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        headers = hook_headers([new, old], f"msg_hook_{i}", now, body.encode())
        cases += [{"secret": s, "headers": headers, "body": body} for s in (new, old, other)]
    out = run_php(
        " $r = [];"
        " foreach (json_decode(stream_get_contents(STDIN), true) as $c) {"
        "  $s = new RelanceSigner($c['secret']);"
        f"  $r[] = $s->verify($c['headers'], $c['body'], {now}); }}"
        " echo json_encode($r);",
        json.dumps(cases),
    )
    assert json.loads(out) == [c["secret"] != other for c in cases]


def send_event(
    tmp_path: Path, url: str, shop: dict[str, Any], event: Any, *extra: str
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / f"event-{secrets.token_hex(4)}.json"
    path.write_text(json.dumps(event, ensure_ascii=False, indent=2))
    args = ["--url", url, "--shop", shop["id"], "--secret", shop["webhook_secret"], *extra]
    return subprocess.run(
        [str(PHP), str(SEND_EVENT), *args, str(path)], capture_output=True, text=True, timeout=30
    )


def test_send_event_to_a_running_relance(server: Server, tmp_path: Path) -> None:  # noqa: F811
    admin = {"Authorization": f"Bearer {server.admin_token}"}
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        created = client.post(
            "/api/v1/shops",
            json={"name": "Boutique PHP", "timezone": "Europe/Paris", "language": "fr"},
            headers=admin,
        )
        assert created.status_code == 201, created.text
        shop = created.json()
        auth = {"Authorization": f"Bearer {shop['api_key']}"}

        ping = send_event(tmp_path, server.base_url, shop, {"type": "ping", "data": {}})
        assert ping.returncode == 0, ping.stdout + ping.stderr
        assert "HTTP 200" in ping.stdout and '"pong"' in ping.stdout

        event = order_event(4242, 9001, 5, email="marie@example.fr")
        sent = send_event(tmp_path, server.base_url, shop, event, "--id", "msg_php_1")
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert "HTTP 202" in sent.stdout and '"accepted"' in sent.stdout

        again = send_event(tmp_path, server.base_url, shop, event, "--id", "msg_php_1")
        assert again.returncode == 0, again.stdout
        assert '"duplicate"' in again.stdout

        def request_for_order() -> dict[str, Any] | None:
            listed = client.get(
                f"/api/v1/shops/{shop['id']}/review-requests",
                params={"order_id": 4242},
                headers=auth,
            )
            assert listed.status_code == 200, listed.text
            items = listed.json()["items"]
            return items[0] if items else None

        item = wait_for(request_for_order, "the review request of order 4242", timeout=20)
        assert (item["order_id"], item["email"], item["language"]) == (
            4242,
            "marie@example.fr",
            "fr",
        )
        assert item["status"] in {"scheduled", "sending", "sent"}

        # A wrong secret: 401, the tool says what to check and exits 1.
        wrong = {**shop, "webhook_secret": "whsec_" + base64.b64encode(b"k" * 32).decode()}
        refused = send_event(tmp_path, server.base_url, wrong, event)
        assert refused.returncode == 1
        assert "HTTP 401" in refused.stdout and "clock" in refused.stdout
        # An unknown shop: 404, which the module never retries.
        unknown = send_event(tmp_path, server.base_url, {**shop, "id": "shp_nope"}, event)
        assert unknown.returncode == 1
        assert "HTTP 404" in unknown.stdout and "would not retry" in unknown.stdout
