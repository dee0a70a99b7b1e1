"""Assertions on the contract's error format: RFC 9457 problem+json, one copy for every test."""

from typing import Any

import httpx

PROBLEM_JSON = "application/problem+json"
# Every problem type the service writes; `about:blank` for routing errors (404, 405).
PROBLEM_TYPE_PREFIX = "https://relance.dev/problems/"
# Fixed by the error handlers: a 401 names its scheme, a 503 says when to come back.
WWW_AUTHENTICATE = "Bearer"
RETRY_AFTER = "5"


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The response is an RFC 9457 problem with the documented fields; returns its body.

    A 401 carries `WWW-Authenticate: Bearer` and a 503 `Retry-After: 5`, as every one of them
    does.
    """
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON, response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status, body
    for field in ("type", "title", "detail"):
        assert isinstance(body[field], str), field
        assert body[field].strip(), field
    assert body["type"] == "about:blank" or body["type"].startswith(PROBLEM_TYPE_PREFIX), body
    if status == 401:
        assert response.headers["www-authenticate"] == WWW_AUTHENTICATE
    if status == 503:
        assert response.headers["retry-after"] == RETRY_AFTER
    return body


def assert_validation_problem(
    response: httpx.Response, loc: list[Any] | None = None, *, source: str = "body"
) -> list[dict[str, Any]]:
    """A 422 problem listing `{loc, msg}` errors, each about the request's `source` (`body`,
    `query`, `path`); when `loc` is given, one error names exactly that field. Returns the
    errors."""
    body = assert_problem(response, 422)
    assert body["type"] == PROBLEM_TYPE_PREFIX + "validation", body
    errors: list[dict[str, Any]] = body["errors"]
    assert isinstance(errors, list)
    assert errors
    for error in errors:
        assert set(error) == {"loc", "msg"}, error
        assert isinstance(error["loc"], list)
        assert error["loc"][:1] == [source], errors
        assert isinstance(error["msg"], str)
        assert error["msg"].strip()
    if loc is not None:
        assert loc in [e["loc"] for e in errors], errors
    return errors
