"""The AppError hierarchy and the handlers that turn every error into problem+json (RFC 9457)."""

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("relance.errors")

PROBLEM_JSON = "application/problem+json"


class AppError(Exception):
    """A refusal the client can act on. Subclasses set status, type and title."""

    status = 400
    type = "about:blank"
    title = "Bad request"

    def __init__(self, detail: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors


class Unauthorized(AppError):
    status = 401
    type = "https://relance.dev/problems/unauthorized"
    title = "Unauthorized"


class InvalidSignature(Unauthorized):
    type = "https://relance.dev/problems/invalid-signature"
    title = "Invalid webhook signature"


class NotFound(AppError):
    status = 404
    type = "https://relance.dev/problems/not-found"
    title = "Not found"


class Conflict(AppError):
    status = 409
    type = "https://relance.dev/problems/conflict"
    title = "Conflict"


class PayloadTooLarge(AppError):
    status = 413
    type = "https://relance.dev/problems/payload-too-large"
    title = "Payload too large"


class InvalidInput(AppError):
    status = 422
    type = "https://relance.dev/problems/validation"
    title = "Invalid input"


class ServiceUnavailable(AppError):
    status = 503
    type = "https://relance.dev/problems/unavailable"
    title = "Service unavailable"


def problem(
    status: int,
    title: str,
    detail: str,
    type_: str = "about:blank",
    errors: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"type": type_, "title": title, "status": status, "detail": detail}
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def validation_errors(raw: list[Any]) -> list[dict[str, Any]]:
    """pydantic's error list, reduced to `loc` and `msg` (no echo of the input)."""
    return [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in raw]


def is_database_unavailable(exc: BaseException) -> bool:
    """True when the error means the database cannot be reached, not that a query is wrong."""
    # TimeoutError: connecting or a statement took too long; PoolTimeout: every pooled
    # connection is busy (usually a stalled database holding them all).
    if isinstance(exc, (ConnectionError, TimeoutError, PoolTimeout)):
        return True
    if isinstance(exc, InterfaceError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, OperationalError):
        text = str(exc.orig).lower()
        return any(
            s in text
            for s in ("connect", "database is locked", "unable to open", "terminat", "shut")
        )
    return isinstance(exc, OSError)


_UNAVAILABLE_TYPES = (DBAPIError, OSError, TimeoutError, PoolTimeout)


def _app_problem(exc: AppError) -> JSONResponse:
    headers = {"Retry-After": "5"} if exc.status == 503 else None
    if exc.status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    return problem(exc.status, exc.title, exc.detail, exc.type, exc.errors, headers)


def _unavailable_problem(exc: Exception) -> JSONResponse:
    log.warning("database unavailable: %s", type(exc).__name__)
    return problem(
        503,
        ServiceUnavailable.title,
        "The database is unreachable; nothing was recorded. Retry later.",
        ServiceUnavailable.type,
        headers={"Retry-After": "5"},
    )


def _internal_problem() -> JSONResponse:
    return problem(
        500,
        "Internal error",
        "Something went wrong on our side; nothing was recorded.",
        "https://relance.dev/problems/internal",
    )


def problem_of(exc: Exception) -> JSONResponse:
    """The answer the handlers below give to `exc`, for a route served ahead of FastAPI's
    routing and middleware (the webhook inbox, `webhooks/inbox.py`). A bug is logged here, with
    its traceback, since no middleware will."""
    if isinstance(exc, AppError):
        return _app_problem(exc)
    if isinstance(exc, _UNAVAILABLE_TYPES) and is_database_unavailable(exc):
        return _unavailable_problem(exc)
    log.error("internal error: %s", type(exc).__name__, exc_info=exc)
    return _internal_problem()


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> JSONResponse:
        return _app_problem(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = validation_errors(list(exc.errors()))
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in errors)
        return problem(
            422, InvalidInput.title, f"Invalid fields: {fields}", InvalidInput.type, errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "Error")
        return problem(exc.status_code, title, str(exc.detail), headers=exc.headers)

    async def _unavailable(_: Request, exc: Exception) -> JSONResponse:
        if not is_database_unavailable(exc):
            raise exc
        return _unavailable_problem(exc)

    # Registered per class (not for Exception) so Starlette answers without re-raising.
    for cls in _UNAVAILABLE_TYPES:
        app.add_exception_handler(cls, _unavailable)

    # Anything else is a bug: still a problem+json answer, never a stack trace; Starlette
    # re-raises it afterwards so the server logs it.
    @app.exception_handler(Exception)
    async def _internal(_: Request, exc: Exception) -> JSONResponse:
        return _internal_problem()
