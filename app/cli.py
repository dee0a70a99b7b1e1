"""`relance serve | worker | migrate | shop create | demo`."""

import argparse
import asyncio
import json
import signal
import sys

from alembic import command

from app import logs
from app.config import get_settings


def _migrate(_: argparse.Namespace) -> None:
    from app.health import alembic_config

    command.upgrade(alembic_config(get_settings().database_url), "head")
    print("database migrated to head", file=sys.stderr)


def _serve(args: argparse.Namespace) -> None:
    import uvicorn

    from app.main import create_app

    settings = get_settings()
    logs.configure(settings.log_level)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_config=None)


def _worker(_: argparse.Namespace) -> None:
    settings = get_settings()
    logs.configure(settings.log_level)
    asyncio.run(_run_worker())


async def _run_worker() -> None:
    from app.db import create_engine
    from app.dispatch.jobs import Dispatcher
    from app.main import start_scheduler, stop_scheduler

    settings = get_settings()
    engine = create_engine(settings.database_url, settings.db_pool_size)
    dispatcher = Dispatcher(engine, settings)
    scheduler = start_scheduler(dispatcher, settings.dispatch_interval)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await stop_scheduler(scheduler, dispatcher)
        await engine.dispose()


def _shop_create(args: argparse.Namespace) -> None:
    from pydantic import ValidationError

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


async def _create_shop(body: object) -> dict[str, object]:
    from app.db import create_engine, transaction, utcnow
    from app.shops import service
    from app.shops.schemas import ShopCreate

    assert isinstance(body, ShopCreate)
    settings = get_settings()
    engine = create_engine(settings.database_url)
    try:
        async with transaction(engine) as conn:
            created = await service.create(
                conn,
                name=body.name,
                timezone=body.timezone,
                language=body.language,
                secret_key=settings.secret_key,
                now=utcnow(),
            )
    finally:
        await engine.dispose()
    result: dict[str, object] = created.model_dump(mode="json")
    return result


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
    sub.add_parser("demo", help="show Relance working end to end, on the defaults").set_defaults(
        func=_demo
    )
    return root


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    args.func(args)
