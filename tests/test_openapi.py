"""The OpenAPI document tells the truth: error responses, typed bodies, bounded ids, auth first.

The last test lets schemathesis loose on the app (ASGI, real databases, a real shop's key) and
fails on any 5xx, any answer the document does not describe, and any error that is not
problem+json.
"""

import json
import re
import traceback
from dataclasses import dataclass, field
from typing import Any

import httpx
import jsonschema_rs
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.python.asgi import shutdown_lifespans
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.main import create_app
from app.validation import INT64_MAX
from tests.factories import ADMIN, create_shop, order_event, signed
from tests.problems import PROBLEM_JSON, assert_problem, assert_validation_problem

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
EXAMPLES_PER_OPERATION = 25
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)


# --- The document ------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """/openapi.json as a client gets it (no database needed to serve it)."""
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('doc') / 'unused.db'}",
        secret_key="test-secret-key",
        _env_file=None,  # type: ignore[call-arg]
    )
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://relance.test") as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def api_operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [op for op in operations(document) if op[0].startswith(("/api/", "/webhooks/"))]


def validator(document: dict[str, Any], name: str) -> jsonschema_rs.Validator:
    """A validator of one component schema, references resolved within the document."""
    root = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    return jsonschema_rs.validator_for(root, validate_formats=True)


def test_every_api_operation_documents_its_problems(document: dict[str, Any]) -> None:
    found = api_operations(document)
    assert len(found) >= 13
    for path, method, operation in found:
        expected = {"422", "503", "401", "404"}  # every one of them authenticates someone
        if path.startswith("/webhooks/"):
            expected.add("413")
        for status in expected:
            response = operation["responses"].get(status)
            assert response is not None, f"{method} {path} does not document {status}"
            assert set(response["content"]) == {PROBLEM_JSON}, f"{method} {path} {status}"
            assert response["content"][PROBLEM_JSON]["schema"] == PROBLEM_REF, (method, path)
            assert response["description"], f"{method} {path} {status}"


def test_no_error_is_documented_as_anything_but_problem_json(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")):
                assert set(response.get("content", {})) == {PROBLEM_JSON}, (method, path, status)
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert "ValidationError" not in schemas


def test_each_documented_problem_example_is_a_problem(document: dict[str, Any]) -> None:
    problem = validator(document, "Problem")
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            content = response.get("content", {}).get(PROBLEM_JSON)
            if content is not None:
                assert problem.is_valid(content["example"]), (method, path, status)
                assert content["example"]["status"] == int(status), (method, path, status)


def test_authentication_failures_document_their_headers(document: dict[str, Any]) -> None:
    for path, method, operation in api_operations(document):
        assert "WWW-Authenticate" in operation["responses"]["401"]["headers"], (method, path)
        assert "Retry-After" in operation["responses"]["503"]["headers"], (method, path)


def test_settings_patch_body_is_typed(document: dict[str, Any]) -> None:
    patch = document["paths"]["/api/v1/shops/{shop_id}/settings"]["patch"]
    body = patch["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/ShopSettingsUpdate"}
    assert body["examples"], "the PATCH shows examples"
    schemas = document["components"]["schemas"]
    update, full = schemas["ShopSettingsUpdate"], schemas["ShopSettings"]
    assert update["additionalProperties"] is False
    assert set(update["properties"]) == set(full["properties"])
    assert "required" not in update
    for name, prop in update["properties"].items():
        assert "default" not in prop, f"{name}: a field left out keeps its stored value"
    # null only where a setting takes null
    assert update["properties"]["delay"]["type"] == "string"
    assert {"type": "null"} in update["properties"]["send_window"]["anyOf"]
    patch_validator = validator(document, "ShopSettingsUpdate")
    for example in body["examples"].values():
        assert patch_validator.is_valid(example["value"]), example


def test_send_window_times_have_their_real_shape(document: dict[str, Any]) -> None:
    """Local wall-clock times: a pattern, not `format: time` (RFC 3339 full-time needs an
    offset, which schemathesis and any strict client would demand of '09:00:00')."""
    window = document["components"]["schemas"]["SendWindow"]["properties"]
    for name in ("start", "end"):
        assert window[name]["type"] == "string"
        assert window[name].get("format") != "time"
        pattern = re.compile(window[name]["pattern"])
        for good in ("09:00", "09:00:00", "23:59:59.500000"):
            assert pattern.match(good), good
        for bad in ("09:00:00Z", "09:00+01:00", "24:00", "9:00"):
            assert not pattern.match(bad), bad


@pytest.mark.parametrize(
    ("path", "method", "name", "where"),
    [
        ("/api/v1/shops/{shop_id}/review-requests/{request_id}", "get", "request_id", "path"),
        ("/api/v1/shops/{shop_id}/review-requests", "get", "order_id", "query"),
        ("/api/v1/shops/{shop_id}/events", "get", "order_id", "query"),
    ],
)
def test_ids_are_bounded_to_64_bits(
    document: dict[str, Any], path: str, method: str, name: str, where: str
) -> None:
    (parameter,) = [
        p
        for p in document["paths"][path][method]["parameters"]
        if p["name"] == name and p["in"] == where
    ]
    schema = parameter["schema"]
    if "anyOf" in schema:
        (schema,) = [s for s in schema["anyOf"] if s.get("type") == "integer"]
    assert schema["exclusiveMinimum"] == 0
    assert schema["maximum"] == INT64_MAX


# --- What the service does ----------------------------------------------------------------

MALFORMED: list[Any] = [
    pytest.param(b"{not json", id="malformed-json"),
    pytest.param(b"\xff\xfe\x00garbage", id="not-utf8"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, id="nested-too-deep"),
    pytest.param(b'{"colour": "blue", "delay": []}', id="invalid-fields"),
    pytest.param(b"[]", id="not-an-object"),
]


@pytest.mark.parametrize("body", MALFORMED)
@pytest.mark.parametrize(("method", "path"), [("PATCH", "/settings"), ("POST", "/api-keys/rotate")])
async def test_authentication_comes_before_the_body(
    client: httpx.AsyncClient, body: bytes, method: str, path: str
) -> None:
    mine = await create_shop(client, name="Mine")
    theirs = await create_shop(client, name="Theirs")
    json_type = {"content-type": "application/json"}

    async def send(shop_id: str, headers: dict[str, str]) -> httpx.Response:
        url = f"/api/v1/shops/{shop_id}{path}"
        return await client.request(method, url, content=body, headers=json_type | headers)

    for headers in ({}, {"authorization": "Bearer rlk_wrong"}):
        refused = await send(mine.id, headers)
        assert "errors" not in assert_problem(refused, 401)
    other = await send(theirs.id, mine.auth)
    assert "errors" not in assert_problem(other, 404)
    assert_validation_problem(await send(mine.id, mine.auth))
    # nothing happened: the key still works
    assert (await client.get(f"/api/v1/shops/{mine.id}", headers=mine.auth)).status_code == 200


@pytest.mark.parametrize("body", MALFORMED)
async def test_admin_token_comes_before_the_body(client: httpx.AsyncClient, body: bytes) -> None:
    json_type = {"content-type": "application/json"}
    refused = await client.post("/api/v1/shops", content=body, headers=json_type)
    assert "errors" not in assert_problem(refused, 401)
    admitted = await client.post("/api/v1/shops", content=body, headers=json_type | ADMIN)
    assert_validation_problem(admitted)


async def test_malformed_json_from_the_owner_is_a_json_error(client: httpx.AsyncClient) -> None:
    shop = await create_shop(client)
    response = await client.patch(
        f"/api/v1/shops/{shop.id}/settings",
        content=b'{"delay": "P1D",',
        headers={"content-type": "application/json", **shop.auth},
    )
    (error,) = assert_validation_problem(response, ["body"])
    assert error["msg"].startswith("JSON decode error")


@pytest.mark.parametrize(
    ("url", "loc"),
    [
        ("/review-requests/9223372036854775808", ["path", "request_id"]),
        ("/review-requests/100000000000000000000000000000", ["path", "request_id"]),
        ("/review-requests/0", ["path", "request_id"]),
        ("/review-requests?order_id=9223372036854775808", ["query", "order_id"]),
        ("/review-requests?order_id=-1", ["query", "order_id"]),
        ("/events?order_id=100000000000000000000000000000", ["query", "order_id"]),
        ("/events?cursor=" + "A" * 101, ["query", "cursor"]),
    ],
)
async def test_ids_beyond_64_bits_are_422(
    client: httpx.AsyncClient, url: str, loc: list[str]
) -> None:
    shop = await create_shop(client)
    response = await client.get(f"/api/v1/shops/{shop.id}{url}", headers=shop.auth)
    assert_validation_problem(response, loc, source=loc[0])


async def test_the_largest_64_bit_id_is_looked_up(client: httpx.AsyncClient) -> None:
    shop = await create_shop(client)
    base = f"/api/v1/shops/{shop.id}"
    one = await client.get(f"{base}/review-requests/{INT64_MAX}", headers=shop.auth)
    assert_problem(one, 404)
    listed = await client.get(f"{base}/review-requests?order_id={INT64_MAX}", headers=shop.auth)
    assert listed.status_code == 200, listed.text
    assert listed.json()["items"] == []
    events = await client.get(f"{base}/events?order_id={INT64_MAX}", headers=shop.auth)
    assert events.status_code == 200, events.text


@pytest.mark.parametrize(
    "window",
    [
        pytest.param({"start": "09:00:00Z", "end": "18:00"}, id="offset-and-none"),
        pytest.param({"start": "09:00+02:00", "end": "18:00+02:00"}, id="offsets"),
        pytest.param({"start": 3600, "end": "18:00"}, id="seconds"),
    ],
)
async def test_send_window_times_take_no_offset(
    client: httpx.AsyncClient, window: dict[str, Any]
) -> None:
    shop = await create_shop(client)
    url = f"/api/v1/shops/{shop.id}/settings"
    response = await client.patch(url, json={"send_window": window}, headers=shop.auth)
    assert_validation_problem(response, ["body", "send_window", "start"])
    assert (await client.get(url, headers=shop.auth)).json()["send_window"] is None


async def test_settings_answers_match_the_document(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    shop = await create_shop(client)
    url = f"/api/v1/shops/{shop.id}/settings"
    window = {"start": "08:30", "end": "18:00:00.250000", "holidays": "fr"}
    patched = await client.patch(url, json={"send_window": window}, headers=shop.auth)
    assert patched.status_code == 200, patched.text
    read = await client.get(url, headers=shop.auth)
    settings = validator(document, "ShopSettings")
    for answer in (patched, read):
        body = answer.json()
        assert body["send_window"]["start"] == "08:30:00"
        errors = [e.message for e in settings.iter_errors(body)]
        assert errors == [], errors
    missing = await client.get(f"/api/v1/shops/{shop.id}/review-requests/1", headers=shop.auth)
    assert validator(document, "Problem").is_valid(assert_problem(missing, 404))


# --- schemathesis -------------------------------------------------------------------------


def problem_json(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """Every 4xx and 5xx is `application/problem+json` with the status it was sent with."""
    if response.status_code < 400:
        return
    content_type = response.headers.get("content-type", [""])[0].split(";")[0].strip()
    assert content_type == PROBLEM_JSON, f"{response.status_code} answered as {content_type!r}"
    assert json.loads(response.content)["status"] == response.status_code


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    problem_json,
]


@dataclass
class Run:
    """What the run needs to keep between cases, and what it found."""

    shop_id: str
    api_key: str
    findings: list[str] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    def headers_for(self, case: schemathesis.Case) -> dict[str, str]:
        path = case.operation.path
        if path == "/api/v1/shops":
            return ADMIN
        if path.startswith("/api/"):
            return {"Authorization": f"Bearer {self.api_key}"}
        return {}

    def exercise(self, case: schemathesis.Case) -> None:
        headers = self.headers_for(case)
        try:
            response = case.call(headers=headers)
        except Exception as exc:  # the app raised: Starlette answered 500, then re-raised it
            last = traceback.format_exception(exc)[-1].strip()
            self.findings.append(f"{case.operation.label}: raised {last}\n{_curl(case, headers)}")
            return
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (AssertionError, BaseExceptionGroup) as exc:
            report = "\n".join(str(exc).strip().splitlines()[:12])
            self.findings.append(f"{case.operation.label}: {report}\n{_curl(case, headers)}")
        if case.operation.path.endswith("/api-keys/rotate") and response.status_code == 200:
            # The previous key stops working: carry on with the new one.
            self.api_key = response.json()["api_key"]


def _curl(case: schemathesis.Case, headers: dict[str, str]) -> str:
    return "  " + case.as_curl_command(headers=headers)[:600]


def exercise_operation(
    run: Run, operation: Any, mode: schemathesis.GenerationMode, examples: int
) -> None:
    fixed = {"shop_id": run.shop_id} if "{shop_id}" in operation.path else None
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=fixed)

    # Findings are collected, not raised: one run reports every one, and nothing is shrunk.
    @hypothesis_settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def examples_of(case: schemathesis.Case) -> None:
        run.exercise(case)

    try:
        examples_of()
    except Unsatisfiable:
        # Nothing to negate (no parameter, no body): the positive examples cover it.
        assert mode == schemathesis.GenerationMode.NEGATIVE, operation.label


def seed(schema: Any, shop: dict[str, Any]) -> None:
    """One order event, so lists and their items are checked on real rows too."""
    body, headers = signed(shop["webhook_secret"], order_event(1042, 5531, 5))
    operation = schema["/webhooks/prestashop/{shop_id}"]["POST"]
    case = operation.Case(path_parameters={"shop_id": shop["id"]}, headers=headers)
    response = case.call(data=body)  # the very bytes that were signed
    assert response.status_code == 202, response.content


def test_schemathesis_finds_nothing(settings: Settings, engine: AsyncEngine) -> None:
    """Bounded: EXAMPLES_PER_OPERATION positive and as many negative cases per operation,
    derandomized (the same cases every run), about ten seconds per backend.

    schemathesis runs the app's lifespan in its own event loop, so this test has an app of its
    own; `engine` is requested only so that it starts on empty tables.
    """
    app = create_app(settings)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    try:
        created = schema["/api/v1/shops"]["POST"].Case(
            body={"name": "Fuzzed", "timezone": "Europe/Paris", "language": "fr"}, headers=ADMIN
        )
        response = created.call()
        assert response.status_code == 201, response.content
        shop = response.json()
        seed(schema, shop)
        run = Run(shop_id=shop["id"], api_key=shop["api_key"])
        count = 0
        for result in schema.get_all_operations():
            operation = result.ok()
            count += 1
            for mode in MODES:
                exercise_operation(run, operation, mode, EXAMPLES_PER_OPERATION)
    finally:
        shutdown_lifespans()
    assert count >= 15, "every documented operation was exercised"
    assert run.statuses.get(200, 0) > 0 and run.statuses.get(422, 0) > 0, run.statuses
    assert not run.findings, f"{len(run.findings)} findings:\n\n" + "\n\n".join(run.findings)
