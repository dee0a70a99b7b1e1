"""End to end: a real `relance serve` process, real HTTP, a real SMTP sink, SIGTERM at the end."""

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import order_event, signed
from tests.smtp_sink import SinkHandler, free_port, smtp_sink

# The `relance` console script of this environment, or its equivalent.
_SCRIPT = Path(sys.executable).parent / "relance"
RELANCE = (
    [str(_SCRIPT)]
    if _SCRIPT.exists()
    else [sys.executable, "-c", "from app.cli import main; main()"]
)

pytestmark = pytest.mark.slow


def relance_env(**values: str) -> dict[str, str]:
    """The test's environment without any RELANCE_* variable, plus `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELANCE_")}
    env.update({f"RELANCE_{k.upper()}": v for k, v in values.items()})
    return env


def run_migrate(env: dict[str, str], cwd: Path) -> None:
    done = subprocess.run(
        [*RELANCE, "migrate"], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def stop(process: subprocess.Popen[bytes]) -> None:
    """Kill a child that is still running, and reap it (a no-op once it has exited)."""
    if process.poll() is None:
        process.kill()
    process.wait(timeout=15)


def tail(path: Path, size: int = 4000) -> str:
    return path.read_text(errors="replace")[-size:] if path.exists() else ""


def wait_for(check: Any, what: str, timeout: float = 60.0, every: float = 0.1) -> Any:
    """Poll `check()` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path
    admin_token: str


@contextmanager
def serve(
    env: dict[str, str], cwd: Path, port: int
) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """`relance serve` on `port`, answering /healthz, killed in any case at the end."""
    log = cwd / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*RELANCE, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:

        def healthy() -> bool:
            if process.poll() is not None:
                pytest.fail(f"relance serve exited with {process.returncode}:\n{tail(log)}")
            try:
                url = f"http://127.0.0.1:{port}/healthz"
                return httpx.get(url, timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(healthy, "relance serve to answer /healthz", timeout=60)
        yield process, log
    finally:
        stop(process)


@pytest.fixture
def sink() -> Iterator[tuple[SinkHandler, int]]:
    with smtp_sink() as (handler, port):
        yield handler, port


@pytest.fixture
def server(
    database_url: str, engine: AsyncEngine, sink: tuple[SinkHandler, int], tmp_path: Path
) -> Iterator[Server]:
    """`relance migrate`, then `relance serve` on a free port, killed in any case at the end."""
    _, smtp_port = sink
    env = relance_env(
        database_url=database_url,
        mail_url=f"smtp://127.0.0.1:{smtp_port}",
        dispatch_interval="0.5",
        admin_token=secrets.token_urlsafe(24),
        secret_key=secrets.token_urlsafe(32),
        scheduler="on",
        smtp_timeout="5",
        public_url="https://reviews.example.test",
    )
    run_migrate(env, tmp_path)
    port = free_port()
    with serve(env, tmp_path, port) as (process, log):
        yield Server(process, f"http://127.0.0.1:{port}", log, env["RELANCE_ADMIN_TOKEN"])


def post(client: httpx.Client, shop: dict[str, Any], payload: dict[str, Any]) -> httpx.Response:
    body, headers = signed(shop["webhook_secret"], payload)
    return client.post(f"/webhooks/prestashop/{shop['id']}", content=body, headers=headers)


def test_serve_schedules_sends_cancels_and_stops_cleanly(
    server: Server, sink: tuple[SinkHandler, int]
) -> None:
    handler, _ = sink
    admin = {"Authorization": f"Bearer {server.admin_token}"}
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        created = client.post(
            "/api/v1/shops",
            json={"name": "Boutique E2E", "timezone": "Europe/Paris", "language": "fr"},
            headers=admin,
        )
        assert created.status_code == 201, created.text
        shop = created.json()
        auth = {"Authorization": f"Bearer {shop['api_key']}"}

        def set_delay(delay: str) -> None:
            patched = client.patch(
                f"/api/v1/shops/{shop['id']}/settings", json={"delay": delay}, headers=auth
            )
            assert patched.status_code == 200, patched.text
            assert patched.json()["delay"] == delay

        # Order 2: delivered, then cancelled well before its e-mail is due.
        set_delay("PT2S")
        delivered_at = datetime.now(UTC)
        first = post(client, shop, order_event(2, 1, 5, delivered_at, email="paul@example.fr"))
        cancel = post(client, shop, order_event(2, 2, 6, email="paul@example.fr"))
        assert (first.status_code, cancel.status_code) == (202, 202), (first.text, cancel.text)
        cancelled_due = delivered_at + timedelta(seconds=2)
        assert datetime.now(UTC) < cancelled_due, "the cancel must arrive before the due time"

        # Order 1: delivered, sent one second later.
        set_delay("PT1S")
        sent = post(client, shop, order_event(1, 1, 5, email="marie@example.fr"))
        assert sent.status_code == 202, sent.text
        assert sent.json()["status"] == "accepted"

        def requests_by_order() -> dict[int, dict[str, Any]]:
            listed = client.get(f"/api/v1/shops/{shop['id']}/review-requests", headers=auth)
            assert listed.status_code == 200, listed.text
            return {item["order_id"]: item for item in listed.json()["items"]}

        wait_for(lambda: handler.messages, "the e-mail of order 1 at the SMTP sink", timeout=60)
        wait_for(lambda: requests_by_order()[1]["status"] == "sent", "order 1 to show as sent", 30)
        # Several ticks after the cancelled e-mail would have been due: still nothing for it.
        wait_for(
            lambda: datetime.now(UTC) > cancelled_due + timedelta(seconds=2),
            "the cancelled request's due time to pass",
            timeout=10,
        )
        time.sleep(1.0)  # two more dispatcher ticks (interval 0.5 s)

        assert len(handler.messages) == 1, [m["To"] for m in handler.messages]
        [message] = handler.messages
        assert handler.envelopes[0][1] == ["marie@example.fr"]
        assert message["To"] == "marie@example.fr"
        assert "REF1" in message["Subject"] and "REF2" not in message["Subject"]

        items = requests_by_order()
        assert set(items) == {1, 2}
        assert items[1]["status"] == "sent"
        assert items[1]["attempts"] == 1
        sent_at = datetime.fromisoformat(items[1]["sent_at"])
        assert datetime.fromisoformat(items[1]["due_at"]) <= sent_at <= datetime.now(UTC)
        assert (items[2]["status"], items[2]["reason"]) == ("cancelled", "order_cancelled")
        assert items[2]["sent_at"] is None

        detail = client.get(
            f"/api/v1/shops/{shop['id']}/review-requests/{items[1]['id']}", headers=auth
        ).json()
        assert detail["deliveries"][0]["message_id"] == message["Message-ID"]

    # SIGTERM: uvicorn shuts down gracefully (lifespan: scheduler, dispatcher, engine), then
    # exits 0 or, since uvicorn 0.29, re-raises the signal it caught (-SIGTERM). A process that
    # merely died of the signal would show the same code, so the log must show the shutdown.
    server.process.send_signal(signal.SIGTERM)
    try:
        code = server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        pytest.fail(f"relance serve did not exit within 15 s of SIGTERM:\n{tail(server.log)}")
    assert code in (0, -signal.SIGTERM), tail(server.log)
    log = server.log.read_text(errors="replace")
    assert "Application shutdown complete" in log, tail(server.log)
    assert "Traceback" not in log and '"level": "error"' not in log, tail(server.log)
