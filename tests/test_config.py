"""Settings: bounds, the database URL, the generated secret key, `relance rekey`, CLI errors."""

import logging
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app import secret_file
from app.config import (
    LEGACY_DEV_SECRET_KEY,
    Settings,
    describe_errors,
    log_key_notice,
    startup_warnings,
)
from app.db import create_engine, transaction, utcnow
from app.rekey import Rekeyed, UnreadableSecrets, rekey
from app.security import address_hash, address_key, decrypt
from app.shops import service as shops
from app.shops.models import Shop, ShopWebhookSecret
from app.shops.schemas import ShopCreate
from app.suppressions.models import Suppression
from tests.test_end_to_end import RELANCE, relance_env

KEY = "a-key-for-these-tests"


@pytest.fixture(autouse=True)
def _no_relance_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Settings built here see only what the test passes (no RELANCE_*, no .env, tmp cwd)."""
    for name in list(os.environ):
        if name.startswith("RELANCE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def make(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def errors_of(**values: Any) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        make(**values)
    return describe_errors(caught.value)


def test_new_settings_have_their_defaults() -> None:
    settings = make(secret_key=KEY)
    assert (settings.db_connect_timeout, settings.db_command_timeout) == (5.0, 10.0)
    assert settings.db_pool_timeout == 5.0
    assert settings.metrics_token is None
    assert settings.http_max_header_bytes == 65536


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("db_connect_timeout", 0),
        ("db_connect_timeout", 301),
        ("db_command_timeout", 3601),
        ("db_pool_timeout", -1),
        ("claim_lease", 1e12),
        ("dispatch_interval", 1e9),
        ("smtp_timeout", 601),
        ("retry_base", 1e9),
        ("db_pool_size", 100000),
        ("http_max_header_bytes", 100),
        ("http_max_header_bytes", 2**21),
    ],
)
def test_numbers_out_of_bounds_name_their_variable(field: str, value: float) -> None:
    [line] = errors_of(secret_key=KEY, **{field: value})
    assert line.startswith(f"RELANCE_{field.upper()}: input should be")


def test_log_level_is_a_known_level() -> None:
    assert make(secret_key=KEY, log_level="debug").log_level == "DEBUG"
    [line] = errors_of(secret_key=KEY, log_level="LOUD")
    assert line == "RELANCE_LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"


def test_claim_lease_must_exceed_twice_the_smtp_timeout() -> None:
    lines = errors_of(secret_key=KEY, claim_lease=60, smtp_timeout=30)
    assert lines == ["RELANCE_CLAIM_LEASE: must be more than twice RELANCE_SMTP_TIMEOUT (30)"]


@pytest.mark.parametrize(
    "url", ["mysql://app:hunter2@db/relance", "postgresql://app:hunter2@db/relance", "hunter2"]
)
def test_database_url_needs_a_known_driver_and_never_echoes_it(url: str) -> None:
    with pytest.raises(ValidationError) as caught:
        make(secret_key=KEY, database_url=url)
    [line] = describe_errors(caught.value)
    assert line.startswith("RELANCE_DATABASE_URL: must be sqlite+aiosqlite:///")
    assert "hunter2" not in line and "hunter2" not in str(caught.value)


def test_both_drivers_are_accepted() -> None:
    for url in ("sqlite+aiosqlite:///x.db", "postgresql+asyncpg://u:p@localhost/db"):
        assert make(secret_key=KEY, database_url=url).database_url == url


def test_an_explicit_key_is_used_as_is_and_writes_no_file(tmp_path: Path) -> None:
    settings = make(secret_key=KEY, database_url=f"sqlite+aiosqlite:///{tmp_path}/r.db")
    assert settings.secret_key == KEY and settings.secret_key_file is None
    assert list(tmp_path.iterdir()) == []


def test_unset_key_on_sqlite_is_generated_once_beside_the_database(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/data/relance.db"
    (tmp_path / "data").mkdir()
    caplog.set_level(logging.INFO, logger="relance.config")

    first = make(database_url=url)
    log_key_notice(first)
    path = tmp_path / "data" / "relance.db.secret-key"
    assert first.secret_key_file == path and first.secret_key_generated
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == first.secret_key and len(first.secret_key) == 43

    second = make(database_url=url)
    log_key_notice(second)
    assert second.secret_key == first.secret_key and not second.secret_key_generated
    assert [r.levelname for r in caplog.records] == ["WARNING", "INFO"]
    assert all(str(path) in r.getMessage() for r in caplog.records)
    assert all(first.secret_key not in r.getMessage() for r in caplog.records)


def test_a_readable_key_file_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "r.db.secret-key").write_text("a-key-someone-wrote\n")
    (tmp_path / "r.db.secret-key").chmod(0o644)
    settings = make(database_url=f"sqlite+aiosqlite:///{tmp_path}/r.db")
    log_key_notice(settings)
    assert settings.secret_key == "a-key-someone-wrote"
    assert "chmod 600" in caplog.records[-1].getMessage()


def test_an_in_memory_database_gets_a_key_per_process(tmp_path: Path) -> None:
    first = make(database_url="sqlite+aiosqlite://")
    second = make(database_url="sqlite+aiosqlite:///:memory:")
    assert first.secret_key == second.secret_key and len(first.secret_key) == 43
    assert first.secret_key_file is None and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "values",
    [
        {"database_url": "postgresql+asyncpg://u:p@localhost/db"},
        {"environment": "production"},
        {"environment": "production", "secret_key": ""},
    ],
)
def test_key_required_with_postgresql_or_in_production(values: dict[str, str]) -> None:
    [line] = errors_of(**values)
    assert line.startswith("RELANCE_SECRET_KEY is required with PostgreSQL or in production")


def test_the_public_development_key_is_refused_in_production() -> None:
    [line] = errors_of(environment="production", secret_key=LEGACY_DEV_SECRET_KEY)
    assert line.startswith("RELANCE_SECRET_KEY: is the public development key")


def test_a_key_file_that_cannot_be_created_is_one_clear_error(tmp_path: Path) -> None:
    [line] = errors_of(database_url=f"sqlite+aiosqlite:///{tmp_path}/missing/r.db")
    assert line.startswith("RELANCE_SECRET_KEY is not set and cannot create")
    assert "No such file or directory" in line


def test_racing_first_starts_end_with_one_key(tmp_path: Path) -> None:
    path = tmp_path / "r.db.secret-key"
    barrier = threading.Barrier(16)
    results: list[tuple[str, bool]] = []

    def start() -> None:
        barrier.wait()
        results.append(secret_file.load_or_create(path))

    threads = [threading.Thread(target=start) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 16
    assert len({key for key, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert path.read_text().strip() == results[0][0]


def test_a_reader_waits_for_the_creator_to_write_the_key(tmp_path: Path) -> None:
    path = tmp_path / "r.db.secret-key"
    path.touch(mode=0o600)  # created by a racing process that has not written yet
    writer = threading.Timer(0.3, lambda: path.write_text("written-late\n"))
    writer.start()
    try:
        assert secret_file.load_or_create(path) == ("written-late", False)
    finally:
        writer.join()


@pytest.mark.slow
def test_racing_processes_end_with_one_key(tmp_path: Path) -> None:
    path = tmp_path / "r.db.secret-key"
    code = (
        "import sys, time, pathlib; from app.secret_file import load_or_create;"
        "time.sleep(float(sys.argv[2]) - time.time());"
        "print(load_or_create(pathlib.Path(sys.argv[1]))[0])"
    )
    start_at = str(time.time() + 2.0)  # every process is up and waiting by then
    cwd = Path(__file__).resolve().parents[1]
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(path), start_at],
            cwd=cwd,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    keys = {process.communicate(timeout=60)[0].strip() for process in processes}
    assert all(process.returncode == 0 for process in processes)
    assert keys == {path.read_text().strip()}


# `relance rekey`: the way forward for databases encrypted with the public development key.


async def _shop_under(engine: AsyncEngine, key: str) -> str:
    async with transaction(engine) as conn:
        created = await shops.create(conn, ShopCreate(name="Shop"), key, utcnow())
    return created.webhook_secret


async def _stored(engine: AsyncEngine) -> list[str]:
    async with transaction(engine, read_only=True) as conn:
        query = select(ShopWebhookSecret.secret_encrypted).order_by(ShopWebhookSecret.id)
        return list((await conn.scalars(query)).all())


async def test_rekey_moves_old_secrets_to_the_current_key(engine: AsyncEngine) -> None:
    legacy = await _shop_under(engine, LEGACY_DEV_SECRET_KEY)
    current = await _shop_under(engine, KEY)

    assert await rekey(engine, LEGACY_DEV_SECRET_KEY, KEY) == Rekeyed(1, 1)
    assert [decrypt(KEY, token) for token in await _stored(engine)] == [legacy, current]
    # Idempotent: a second run finds everything under the current key and changes nothing.
    before = await _stored(engine)
    assert await rekey(engine, LEGACY_DEV_SECRET_KEY, KEY) == Rekeyed(0, 2)
    assert await _stored(engine) == before


async def test_rekey_refuses_secrets_neither_key_opens(engine: AsyncEngine) -> None:
    legacy = await _shop_under(engine, LEGACY_DEV_SECRET_KEY)
    await _shop_under(engine, "some-third-key")
    before = await _stored(engine)

    with pytest.raises(UnreadableSecrets, match="1 stored secret"):
        await rekey(engine, LEGACY_DEV_SECRET_KEY, KEY)
    assert await _stored(engine) == before  # all or nothing
    assert decrypt(LEGACY_DEV_SECRET_KEY, before[0]) == legacy


async def test_rekey_carries_the_suppression_list_over(engine: AsyncEngine) -> None:
    await _shop_under(engine, KEY)
    async with transaction(engine) as conn:
        shop_id = await conn.scalar(select(Shop.id))
        old = address_key(LEGACY_DEV_SECRET_KEY)
        await conn.execute(
            insert(Suppression),
            [
                {"shop_id": shop_id, "email_hash": address_hash(old, "a@x.fr"), "email": "A@x.fr",
                 "reason": "unsubscribed", "created_at": utcnow()},
                {"shop_id": shop_id, "email_hash": address_hash(old, "gone@x.fr"), "email": None,
                 "reason": "manual", "created_at": utcnow()},
            ],
        )  # fmt: skip
    done = await rekey(engine, LEGACY_DEV_SECRET_KEY, KEY)
    assert done.suppressions_rehashed == 1
    async with transaction(engine, read_only=True) as conn:
        hashes = set((await conn.scalars(select(Suppression.email_hash))).all())
    assert address_hash(address_key(KEY), "a@x.fr") in hashes
    assert address_hash(old, "gone@x.fr") in hashes  # an erased address cannot be moved
    assert (await rekey(engine, LEGACY_DEV_SECRET_KEY, KEY)).suppressions_rehashed == 0


# Every command: a wrong setting is one line naming the variable, and exit status 2.


def run(
    args: list[str], cwd: Path, stdin: str = "", **values: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RELANCE, *args],
        env=relance_env(**values),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        input=stdin,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        ["serve"],
        ["worker"],
        ["migrate"],
        ["shop", "create", "--name", "X"],
        ["demo"],
        ["rekey", "--from-key", "old"],
    ],
)
def test_every_command_prints_one_line_for_a_wrong_setting(args: list[str], tmp_path: Path) -> None:
    done = run(args, tmp_path, claim_lease="50", smtp_timeout="30")
    assert done.returncode == 2
    expected = "error: RELANCE_CLAIM_LEASE: must be more than twice RELANCE_SMTP_TIMEOUT (30)\n"
    assert done.stderr == expected
    assert list(tmp_path.iterdir()) == []  # nothing was started or created


@pytest.mark.slow
def test_malformed_database_url_and_missing_key_are_one_line_each(tmp_path: Path) -> None:
    bad_url = run(["migrate"], tmp_path, database_url="mysql://app:hunter2@db/relance")
    assert bad_url.returncode == 2
    assert bad_url.stderr.startswith("error: RELANCE_DATABASE_URL: must be sqlite+aiosqlite")
    assert bad_url.stderr.count("\n") == 1 and "hunter2" not in bad_url.stderr

    no_key = run(["worker"], tmp_path, database_url="postgresql+asyncpg://app:pw@db/relance")
    assert no_key.returncode == 2
    assert no_key.stderr.startswith(
        "error: RELANCE_SECRET_KEY is required with PostgreSQL or in production"
    )
    assert no_key.stderr.count("\n") == 1


@pytest.mark.slow
async def test_out_of_the_box_key_file_and_rekey_of_a_development_database(
    tmp_path: Path,
) -> None:
    first = run(["migrate"], tmp_path)
    assert first.returncode == 0, first.stderr
    path = tmp_path / "relance.db.secret-key"
    key = path.read_text().strip()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert f"generated a new secret key in {path}" in first.stderr and key not in first.stderr

    again = run(["migrate"], tmp_path)
    assert again.returncode == 0 and "generated" not in again.stderr
    assert path.read_text().strip() == key

    # A shop created before keys were generated: its secret is under the public key.
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/relance.db")
    try:
        secret = await _shop_under(engine, LEGACY_DEV_SECRET_KEY)
        done = run(["rekey", "--from-key", "-"], tmp_path, stdin=LEGACY_DEV_SECRET_KEY)
        assert done.returncode == 0, done.stderr
        assert "re-encrypted 1 stored secret(s)" in done.stderr
        [token] = await _stored(engine)
        assert decrypt(key, token) == secret
    finally:
        await engine.dispose()


def test_a_public_url_without_https_is_warned_about_outside_development() -> None:
    base = {"secret_key": "k", "_env_file": None}
    production = Settings(environment="production", public_url="http://shop.example", **base)  # type: ignore[arg-type]
    assert any("RELANCE_PUBLIC_URL" in w for w in startup_warnings(production))
    https = Settings(environment="production", public_url="https://shop.example", **base)  # type: ignore[arg-type]
    assert startup_warnings(https) == []
    development = Settings(public_url="http://127.0.0.1:8000", **base)  # type: ignore[arg-type]
    assert startup_warnings(development) == []


@pytest.mark.parametrize("retention", ["PT1H", "P0D", "P3661D", "soon"])
def test_event_retention_is_at_least_a_day_and_bounded(retention: str) -> None:
    with pytest.raises(ValidationError, match="event_retention"):
        Settings(secret_key="k", event_retention=retention, _env_file=None)  # type: ignore[call-arg]
