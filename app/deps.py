"""FastAPI dependencies: the request's transaction, the runtime, the admin, bounded ids."""

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.config import Settings
from app.db import transaction
from app.errors import NotFound, Unauthorized
from app.security import admin_token_matches
from app.validation import INT64_MAX

_bearer = HTTPBearer(auto_error=False)


# `async def` on purpose: FastAPI runs plain `def` dependencies in its thread pool, a thread
# hop per dependency per request on the hot path.
async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[AsyncEngine, Depends(get_engine)]


async def _write_transaction(engine: EngineDep) -> AsyncIterator[AsyncConnection]:
    async with transaction(engine) as conn:
        yield conn


async def _read_transaction(engine: EngineDep) -> AsyncIterator[AsyncConnection]:
    async with transaction(engine, read_only=True) as conn:
        yield conn


# scope="function": the transaction ends (commits) before the response is sent, so a client
# never sees a 2xx for something that was not committed.
ConnDep = Annotated[AsyncConnection, Depends(_write_transaction, scope="function")]
ReadConnDep = Annotated[AsyncConnection, Depends(_read_transaction, scope="function")]
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def require_admin(settings: SettingsDep, credentials: BearerDep) -> None:
    if settings.admin_token is None:
        raise NotFound("The admin API is disabled: set RELANCE_ADMIN_TOKEN to enable it.")
    if credentials is None or not admin_token_matches(
        settings.admin_token, credentials.credentials
    ):
        raise Unauthorized("A valid admin bearer token is required.")


AdminDep = Depends(require_admin)


# Ids are 64-bit in both databases: a larger number is refused (422) where it is parsed,
# instead of overflowing in the database driver.
IdPath = Annotated[int, Path(gt=0, le=INT64_MAX)]
IdQuery = Annotated[int | None, Query(gt=0, le=INT64_MAX)]
CursorQuery = Annotated[
    str | None, Query(max_length=100, description="`next_cursor` of the previous page.")
]


class _DeferredJSONRequest(Request):
    """A request whose malformed JSON body reads as `...` instead of raising.

    `...` because no body type of ours accepts it: pydantic refuses it for models (even with
    the `from_attributes` FastAPI validates with, which would fill an arbitrary object's
    fields with defaults), optional models, dicts, lists, strings and numbers.
    """

    json_error: str | None = None

    async def json(self) -> Any:
        try:
            return await super().json()
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
            self.json_error = str(exc) or type(exc).__name__
            return ...


class AuthFirstRoute(APIRoute):
    """A route that checks who is calling before it says anything about the body.

    FastAPI parses the JSON body before it solves dependencies, so a caller without a valid key
    sending malformed JSON would get a detailed 422 instead of 401 (or 404 for another shop's
    key). Field validation already runs after the dependencies; this defers the syntax error
    to that same point: the body reads as a value no model accepts, the dependencies run (and
    may refuse), and only then is the validation error reported as a JSON syntax error.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            deferred = _DeferredJSONRequest(request.scope, request.receive)
            try:
                return await handler(deferred)
            except RequestValidationError:
                if deferred.json_error is None:
                    raise
                msg = f"JSON decode error: {deferred.json_error}"
                raise RequestValidationError(
                    [{"type": "json_invalid", "loc": ("body",), "msg": msg}]
                ) from None

        return handle
