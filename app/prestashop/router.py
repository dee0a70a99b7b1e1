"""PrestaShop Webservice API: the shop's URL and key, and backfills."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from pydantic import ValidationError

from app.db import transaction, utcnow
from app.deps import AuthFirstRoute, BearerDep, ConnDep, EngineDep, ReadConnDep, SettingsDep
from app.errors import (
    PROBLEM_JSON,
    AppError,
    Conflict,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    validation_errors,
)
from app.openapi import REF, SHOP_RESPONSES, Responses
from app.prestashop import runs, service
from app.prestashop.client import Connector, WebserviceError
from app.prestashop.schemas import (
    BackfillCreate,
    BackfillRead,
    BackfillThreads,
    ThinEvent,
    ThinEventAnswer,
    WebserviceRead,
    WebserviceSaved,
    WebserviceUpdate,
)
from app.shops import service as shops
from app.shops.deps import ReadShopDep, ShopDep
from app.timeutil import parse_duration

router = APIRouter(
    prefix="/api/v1/shops/{shop_id}",
    tags=["prestashop webservice"],
    route_class=AuthFirstRoute,
    responses=SHOP_RESPONSES,
)


class WebserviceFailed(AppError):
    status = 502
    type = "https://relance.dev/problems/prestashop-webservice"
    title = "PrestaShop Webservice error"


def _problem(status: int, kind: str, title: str, description: str, detail: str) -> Responses:
    example = {"type": f"https://relance.dev/problems/{kind}", "title": title,
               "status": status, "detail": detail}  # fmt: skip
    return {
        status: {
            "description": description,
            "content": {
                PROBLEM_JSON: {"schema": {"$ref": REF.format(model="Problem")}, "example": example}
            },
        }
    }


_BACKFILL_RESPONSES: Responses = {
    **_problem(
        409, "conflict", "Conflict",
        "The stored key no longer decrypts (RELANCE_SECRET_KEY changed): PUT it again.",
        "The stored Webservice key cannot be decrypted.",
    ),
    **_problem(
        502, "prestashop-webservice", WebserviceFailed.title,
        "The shop's Webservice refused or failed (the detail names the resource and method); "
        "nothing was imported.",
        "GET orders: HTTP 401: the key was refused; check that it is active and has the GET "
        "permission on 'orders'",
    ),
}  # fmt: skip


async def webservice_connector() -> Connector:
    """How backfills reach the shop (tests override this with an ASGI stand-in)."""
    return Connector()


ConnectorDep = Annotated[Connector, Depends(webservice_connector)]


async def shop_checked(shop_id: str, engine: EngineDep, credentials: BearerDep) -> str:
    """The shop the key opens, checked in a short transaction of its own: a backfill then
    calls the shop without holding one."""
    if credentials is None:
        raise Unauthorized("A shop API key is required: 'Authorization: Bearer <api_key>'.")
    async with transaction(engine, read_only=True) as conn:
        shop = await shops.authenticate(conn, shop_id, credentials.credentials, utcnow())
    return shop.id


@router.get("/prestashop-webservice", summary="The shop's Webservice settings and last run")
async def read_webservice(shop: ReadShopDep, conn: ReadConnDep) -> WebserviceRead:
    return WebserviceRead.model_validate(await service.get(conn, shop.id))


@router.put(
    "/prestashop-webservice",
    summary="Set the Webservice URL and key (the key is never shown again)",
)
async def put_webservice(
    shop: ShopDep, conn: ConnDep, settings: SettingsDep, body: WebserviceUpdate
) -> WebserviceSaved:
    await service.check_url(body.url, settings.webhook_allow_private)
    saved, token = await service.put(
        conn, shop.id, body.url, body.key, body.thin_events,
        secret_key=settings.secret_key, now=utcnow(),
    )  # fmt: skip
    return WebserviceSaved.model_validate({**saved, "thin_events_token": token})


@router.delete(
    "/prestashop-webservice", status_code=204, summary="Forget the Webservice URL and key"
)
async def delete_webservice(shop: ShopDep, conn: ConnDep) -> None:
    await service.delete_settings(conn, shop.id)


@router.post(
    "/backfill",
    summary="Import the orders of a period from the Webservice; counts by outcome",
    responses=_BACKFILL_RESPONSES,
)
async def backfill(
    shop_id: Annotated[str, Depends(shop_checked)],
    engine: EngineDep,
    settings: SettingsDep,
    connector: ConnectorDep,
    body: BackfillCreate | None = None,
) -> BackfillRead:
    body = body or BackfillCreate()
    try:
        report = await runs.backfill(
            engine, shop_id, parse_duration(body.since).approx(), body.dry_run,
            secret_key=settings.secret_key, now=utcnow(), connector=connector,
        )  # fmt: skip
    except WebserviceError as exc:
        raise WebserviceFailed(str(exc)) from None
    except runs.TooManyOrders as exc:
        raise InvalidInput(
            f"The period is too long: {exc}.",
            [{"loc": ["body", "since"], "msg": f"{exc}; ask for a shorter period"}],
        ) from None
    except ValueError:
        raise Conflict(
            "The stored Webservice key cannot be decrypted (RELANCE_SECRET_KEY changed): "
            "PUT the key again, or run `relance rekey`."
        ) from None
    return BackfillRead(
        since=report.since, until=report.until, dry_run=report.dry_run, orders=report.orders,
        outcomes=dict(sorted(report.outcomes.items())),
        threads=BackfillThreads.model_validate(report.threads.as_dict()),
    )  # fmt: skip


# The `ps_webhooks` module's events: unsigned, so the per-shop token in the path is the only
# proof of origin. It is never logged (uvicorn's access log is off, metrics label the route
# template) and never echoed.
thin_router = APIRouter(tags=["prestashop webservice"])

MAX_THIN_BODY = 256 * 1024


async def _bounded_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_THIN_BODY:
        raise PayloadTooLarge("The body is over 256 KiB.")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_THIN_BODY:
            raise PayloadTooLarge("The body is over 256 KiB.")
    return body


@thin_router.post(
    "/prestashop/thin-events/{token}",
    status_code=202,
    summary="An order event of the ps_webhooks module, completed through the Webservice",
    responses={
        **{k: v for k, v in SHOP_RESPONSES.items() if k in (422, 503)},
        **_problem(
            404,
            "not-found",
            "Not found",
            "No shop has this token, or its thin events are off.",
            "No shop has this thin-event token, or its thin events are off.",
        ),
        **_problem(
            413,
            "payload-too-large",
            "Payload too large",
            "Body over 256 KiB.",
            "The body is over 256 KiB.",
        ),
        **_BACKFILL_RESPONSES,
    },
)
async def thin_event(
    token: Annotated[str, Path(max_length=100)],
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    connector: ConnectorDep,
) -> ThinEventAnswer:
    async with transaction(engine, read_only=True) as conn:
        shop_id = await service.shop_of_token(conn, token)
    if shop_id is None:
        raise NotFound("No shop has this thin-event token, or its thin events are off.")
    try:
        event = ThinEvent.model_validate_json(await _bounded_body(request))
    except ValidationError as exc:
        errors = [{**e, "loc": ["body", *e["loc"]]} for e in validation_errors(exc.errors())]
        raise InvalidInput("Not a ps_webhooks event.", errors) from None
    order_id = event.order_id()
    if order_id is None:
        return ThinEventAnswer(status="ignored")
    try:
        outcome = await runs.enrich(
            engine, shop_id, order_id, secret_key=settings.secret_key, now=utcnow(),
            connector=connector,
        )  # fmt: skip
    except WebserviceError as exc:
        raise WebserviceFailed(str(exc)) from None
    except ValueError:
        raise Conflict(
            "The stored Webservice key cannot be decrypted (RELANCE_SECRET_KEY changed)."
        ) from None
    return ThinEventAnswer(status=outcome, order_id=order_id)
