"""`relance serve | worker | migrate | shop create | demo | rekey | backfill`."""

import argparse
import asyncio
import json
import logging
import signal
import sys
from typing import TYPE_CHECKING

from alembic import command
from pydantic import ValidationError

from app import logs
from app.config import Settings, describe_errors, get_settings, log_key_notice, startup_warnings

if TYPE_CHECKING:
    from datetime import timedelta

    from app.rekey import Rekeyed
    from app.shops.schemas import ShopCreate


def _migrate(_: argparse.Namespace) -> None:
    from app.migrations import alembic_config

    command.upgrade(alembic_config(get_settings().database_url), "head")
    print("database migrated to head", file=sys.stderr)


def _serve(args: argparse.Namespace) -> None:
    from app import server
    from app.main import create_app

    settings = get_settings()
    server.run(create_app(settings), settings, args.host, args.port, args.http)


def _worker(_: argparse.Namespace) -> None:
    asyncio.run(_run_worker())


async def _run_worker() -> None:
    from app import scheduler as scheduler_module
    from app.db import engine_for

    settings = get_settings()
    for warning in startup_warnings(settings):
        logging.getLogger("relance").warning(warning)
    engine = engine_for(settings)
    jobs = scheduler_module.collect(engine, settings)
    scheduler = scheduler_module.start(jobs)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await scheduler_module.stop(scheduler, jobs)
        await engine.dispose()


def _shop_create(args: argparse.Namespace) -> None:
    from app.shops.schemas import ShopCreate

    try:
        body = ShopCreate(name=args.name, timezone=args.timezone, language=args.language)
    except ValidationError as exc:
        for error in exc.errors():
            print(f"error: --{error['loc'][0]}: {error['msg']}", file=sys.stderr)
        raise SystemExit(2) from None
    created = asyncio.run(_create_shop(body))
    if args.json:
        print(json.dumps(created, indent=2))
    else:
        for key, value in created.items():
            print(f"{key}: {value}")


async def _create_shop(body: "ShopCreate") -> dict[str, object]:
    from app.db import engine_for, transaction, utcnow
    from app.shops import service

    settings = get_settings()
    engine = engine_for(settings)
    try:
        async with transaction(engine) as conn:
            created = await service.create(conn, body, settings.secret_key, utcnow())
    finally:
        await engine.dispose()
    result: dict[str, object] = created.model_dump(mode="json")
    return result


def _shop_delete(args: argparse.Namespace) -> None:
    if args.confirm != args.id:
        print("error: --confirm: repeat the shop's id to erase it", file=sys.stderr)
        raise SystemExit(2)
    from app.errors import NotFound

    try:
        asyncio.run(_erase_shop(args.id))
    except NotFound as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        raise SystemExit(1) from None
    print(f"shop {args.id} and all its data erased", file=sys.stderr)


async def _erase_shop(shop_id: str) -> None:
    from app.db import engine_for, transaction
    from app.shops import service

    engine = engine_for(get_settings())
    try:
        async with transaction(engine) as conn:
            await service.erase(conn, shop_id)
    finally:
        await engine.dispose()


def _personal_data(args: argparse.Namespace) -> None:
    from app.validation import email_address

    try:
        email = email_address(args.email.strip())
    except ValueError as exc:
        print(f"error: --email: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    result = asyncio.run(_personal_data_run(args.action, args.shop, email))
    print(json.dumps(result, indent=2, default=str, ensure_ascii=False))


async def _personal_data_run(action: str, shop_id: str, email: str) -> object:
    from app.db import engine_for, transaction, utcnow
    from app.privacy import service

    settings = get_settings()
    engine = engine_for(settings)
    try:
        async with transaction(engine, read_only=action == "export") as conn:
            if action == "export":
                return await service.export(conn, shop_id, email, settings.secret_key)
            return {
                "erased": await service.erase(conn, shop_id, email, settings.secret_key, utcnow())
            }
    finally:
        await engine.dispose()


def _rekey(args: argparse.Namespace) -> None:
    from app.rekey import UnreadableSecrets

    old_key = sys.stdin.readline().strip() if args.from_key == "-" else args.from_key
    if not old_key:
        print("error: --from-key: the previous key is empty", file=sys.stderr)
        raise SystemExit(2)
    try:
        done = asyncio.run(_rekey_all(old_key))
    except UnreadableSecrets as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    print(
        f"re-encrypted {done.reencrypted} stored secret(s) with the current key "
        f"({done.already_current} already used it); "
        f"{done.suppressions_rehashed} suppression entries moved to the current key",
        file=sys.stderr,
    )


async def _rekey_all(old_key: str) -> "Rekeyed":
    from app.db import engine_for
    from app.rekey import rekey

    settings = get_settings()
    engine = engine_for(settings)
    try:
        return await rekey(engine, old_key, settings.secret_key)
    finally:
        await engine.dispose()


def _backfill(args: argparse.Namespace) -> None:
    from app.timeutil import parse_duration

    try:
        period = parse_duration(args.since).approx()
    except ValueError as exc:
        print(f"error: --since: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    report = asyncio.run(_backfill_run(args.shop, period, args.dry_run))
    print(json.dumps(report, indent=2, default=str))


async def _backfill_run(shop_id: str, period: "timedelta", dry_run: bool) -> dict[str, object]:
    from app.db import engine_for, utcnow
    from app.errors import NotFound
    from app.prestashop import runs
    from app.prestashop.client import Connector, WebserviceError

    settings = get_settings()
    engine = engine_for(settings)
    try:
        report = await runs.backfill(
            engine, shop_id, period, dry_run,
            secret_key=settings.secret_key, now=utcnow(), connector=Connector(),
        )  # fmt: skip
    except (NotFound, WebserviceError, runs.TooManyOrders, ValueError) as exc:
        print(f"error: {getattr(exc, 'detail', None) or exc}", file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        await engine.dispose()
    return {
        "since": report.since.isoformat(),
        "until": report.until.isoformat(),
        "dry_run": report.dry_run,
        "orders": report.orders,
        "outcomes": dict(sorted(report.outcomes.items())),
        "threads": report.threads.as_dict(),
    }


def _kpis_recompute(args: argparse.Namespace) -> None:
    try:
        changed = asyncio.run(_recompute(args.shop))
    except LookupError as exc:
        print(f"error: --shop: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    print(f"{changed} ticket(s) of shop {args.shop} had timings changed by its current hours")


async def _recompute(shop_id: str) -> int:
    """Every ticket's waiting times again, with the shop's business hours as they are now."""
    from sqlalchemy import select

    from app.db import engine_for, transaction
    from app.shops.models import Shop
    from app.tickets import recording

    engine = engine_for(get_settings())
    try:
        async with transaction(engine) as conn:
            if await conn.scalar(select(Shop.id).where(Shop.id == shop_id)) is None:
                raise LookupError(f"no shop {shop_id}")
            return await recording.recompute(conn, shop_id)
    finally:
        await engine.dispose()


def _demo(args: argparse.Namespace) -> None:
    from app.demo import run

    _migrate(args)
    asyncio.run(run())


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="relance", description=__doc__)
    sub = root.add_subparsers(dest="command", required=True)
    serve = sub.add_parser(
        "serve", help="serve the API (and the scheduler unless RELANCE_SCHEDULER=off)"
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--http",
        choices=["httptools", "h11"],
        default="httptools",
        help="HTTP parser (default httptools; h11 is pure Python and slower)",
    )
    serve.set_defaults(func=_serve)
    sub.add_parser("worker", help="run only the scheduler and dispatcher").set_defaults(
        func=_worker
    )
    sub.add_parser("migrate", help="upgrade the database to the latest schema").set_defaults(
        func=_migrate
    )
    shop = sub.add_parser("shop", help="manage shops").add_subparsers(dest="action", required=True)
    create = shop.add_parser("create", help="create a shop and print its key and secret")
    create.add_argument("--name", required=True)
    create.add_argument("--timezone", default="Europe/Paris")
    create.add_argument("--language", default="fr")
    create.add_argument("--json", action="store_true", help="print JSON")
    create.set_defaults(func=_shop_create)
    erase = shop.add_parser("delete", help="erase a shop and all its data")
    erase.add_argument("--id", required=True, help="the shop's id")
    erase.add_argument("--confirm", required=True, help="the shop's id again")
    erase.set_defaults(func=_shop_delete)
    personal = sub.add_parser("personal-data", help="export or erase one address's data")
    personal.add_argument("action", choices=["export", "erase"])
    personal.add_argument("--shop", required=True, help="the shop's id")
    personal.add_argument("--email", required=True)
    personal.set_defaults(func=_personal_data)
    sub.add_parser("demo", help="show Relance working end to end, on the defaults").set_defaults(
        func=_demo
    )
    rekey = sub.add_parser(
        "rekey",
        help="re-encrypt stored secrets from a previous RELANCE_SECRET_KEY to the current one",
    )
    rekey.add_argument(
        "--from-key", required=True, metavar="OLD", help="the previous key ('-': read stdin)"
    )
    rekey.set_defaults(func=_rekey)
    backfill = sub.add_parser(
        "backfill", help="import a period's orders from the shop's PrestaShop Webservice"
    )
    backfill.add_argument("--shop", required=True, help="the shop's id")
    backfill.add_argument("--since", default="P30D", help="ISO 8601 duration (default P30D)")
    backfill.add_argument(
        "--dry-run", action="store_true", help="report what would happen; change nothing"
    )
    backfill.set_defaults(func=_backfill)
    kpis = sub.add_parser("kpis", help="after-sales figures").add_subparsers(
        dest="action", required=True
    )
    recompute = kpis.add_parser(
        "recompute", help="recompute every ticket's waiting times with the current business hours"
    )
    recompute.add_argument("--shop", required=True, help="the shop's id")
    recompute.set_defaults(func=_kpis_recompute)
    return root


def _settings_or_exit() -> Settings:
    """The settings, or one line per wrong variable and exit status 2 (no traceback)."""
    try:
        return get_settings()
    except ValidationError as exc:
        for line in describe_errors(exc):
            print(f"error: {line}", file=sys.stderr)
        raise SystemExit(2) from None


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    settings = _settings_or_exit()
    if args.func in (_serve, _worker):
        logs.configure(settings.log_level)
    log_key_notice(settings)
    args.func(args)
