"""The problem+json schema and the error responses each operation documents.

FastAPI documents only what it produces itself (a 422 as `application/json` with its own
schema); our handlers answer every error as `application/problem+json` (RFC 9457), so the
routers list these responses instead, and `install` adds the schemas they refer to.
"""

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from app.errors import PROBLEM_JSON

REF = "#/components/schemas/{model}"


class FieldError(BaseModel):
    """One invalid input: where it is (`["body", "delay"]`, `["query", "order_id"]`) and why."""

    loc: list[str | int]
    msg: str


class Problem(BaseModel):
    """An error, as RFC 9457 problem details."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "https://relance.dev/problems/not-found",
                    "title": "Not found",
                    "status": 404,
                    "detail": "No shop 'shp_x'.",
                }
            ]
        }
    )

    type: str = Field(description="A URI naming the kind of error.")
    title: str = Field(description="A short summary of the kind of error.")
    status: int = Field(ge=400, le=599, description="The HTTP status code.")
    detail: str = Field(description="What went wrong this time.")
    errors: list[FieldError] = Field(
        default_factory=list, description="Validation errors (422) only: each invalid input."
    )


def _problem(
    description: str, example: dict[str, Any], headers: dict[str, Any] | None = None
) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {
            PROBLEM_JSON: {"schema": {"$ref": REF.format(model="Problem")}, "example": example}
        },
    }
    if headers:
        response["headers"] = headers
    return response


def _example(status: int, kind: str, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": f"https://relance.dev/problems/{kind}",
        "title": title,
        "status": status,
        "detail": detail,
        **extra,
    }


_WWW_AUTHENTICATE = {
    "WWW-Authenticate": {
        "description": "The scheme to authenticate with.",
        "required": True,
        "schema": {"type": "string", "example": "Bearer"},
    }
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "required": True,
        "schema": {"type": "string", "example": "5"},
    }
}

_INVALID = _problem(
    "Invalid path, query or body: `errors` lists each input and why.",
    _example(
        422,
        "validation",
        "Invalid input",
        "Invalid fields: body.delay",
        errors=[{"loc": ["body", "delay"], "msg": "Value error, not an ISO 8601 duration"}],
    ),
)
_UNAVAILABLE = _problem(
    "The database is unreachable; nothing was recorded. Retry after `Retry-After` seconds.",
    _example(503, "unavailable", "Service unavailable", "The database is unreachable."),
    _RETRY_AFTER,
)

Responses = dict[int | str, dict[str, Any]]

CONFLICT_RESPONSES: Responses = {
    409: _problem(
        "The request is not in a state this action applies to (nothing left to send, being "
        "sent now, nothing failed, or a newer request is live for the order).",
        _example(409, "conflict", "Conflict", "No e-mail of this request is scheduled."),
    )
}

SHOP_RESPONSES: Responses = {
    401: _problem(
        "No API key, or an unknown or expired one.",
        _example(401, "unauthorized", "Unauthorized", "Unknown or expired API key."),
        _WWW_AUTHENTICATE,
    ),
    404: _problem(
        "No such shop, or the key belongs to another shop (never 403, so ids cannot be probed),"
        " or no such resource in this shop.",
        _example(404, "not-found", "Not found", "No shop 'shp_x'."),
    ),
    422: _INVALID,
    503: _UNAVAILABLE,
}
"""What every `/api/v1/shops/{shop_id}/…` operation may answer besides its success."""

PUBLIC_RESPONSES: Responses = {
    404: _problem(
        "No such shop (or, for a private feed, a missing or wrong token).",
        _example(404, "not-found", "Not found", "No shop 'shp_x'."),
    ),
    422: _INVALID,
    429: _problem(
        "Too many requests from this client address; retry after `Retry-After` seconds.",
        _example(
            429,
            "rate-limited",
            "Too many requests",
            "At most 120 requests a minute per client; retry later.",
        ),
        _RETRY_AFTER,
    ),
    503: _UNAVAILABLE,
}
"""What the public, read-only operations (`/public/…`, `/feeds/…`) may answer besides success."""

ADMIN_RESPONSES: Responses = {
    401: _problem(
        "No admin bearer token, or a wrong one.",
        _example(401, "unauthorized", "Unauthorized", "A valid admin bearer token is required."),
        _WWW_AUTHENTICATE,
    ),
    404: _problem(
        "The admin API is disabled (RELANCE_ADMIN_TOKEN is unset).",
        _example(404, "not-found", "Not found", "The admin API is disabled."),
    ),
    422: _INVALID,
    503: _UNAVAILABLE,
}

WEBHOOK_RESPONSES: Responses = {
    401: _problem(
        "Missing or bad signature, or a timestamp more than 5 minutes away.",
        _example(401, "invalid-signature", "Invalid webhook signature", "No valid signature."),
        _WWW_AUTHENTICATE,
    ),
    404: _problem("Unknown shop.", _example(404, "not-found", "Not found", "No shop 'shp_x'.")),
    413: _problem(
        "Body over 1 MiB.",
        _example(413, "payload-too-large", "Payload too large", "The body is over 1 MiB."),
    ),
    422: _problem(
        "Signed, but not valid JSON or not the documented schema: `errors` lists the fields.",
        _example(
            422,
            "validation",
            "Invalid input",
            "Invalid fields: data.order.id",
            errors=[{"loc": ["data", "order", "id"], "msg": "Field required"}],
        ),
    ),
    503: _UNAVAILABLE,
}


def problem_schemas() -> dict[str, Any]:
    """`Problem` and the models it uses, as OpenAPI component schemas."""
    schema = Problem.model_json_schema(ref_template=REF, mode="serialization")
    components: dict[str, Any] = schema.pop("$defs", {})
    components["Problem"] = schema
    return components


def install(app: FastAPI) -> None:
    """Add the problem schemas to the app's document: the responses above refer to them."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()
        document.setdefault("components", {}).setdefault("schemas", {}).update(problem_schemas())
        return document

    app.openapi = openapi  # type: ignore[method-assign]
