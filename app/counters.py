"""Counters fed as things happen (webhooks, HTTP, deliveries, SMTP errors), and the middleware
that times every request. Plumbing: any part may count; `app/metrics.py` serves them.

Counters and the histogram are module-level singletons (registered once per process, whatever
the number of `create_app` calls).
"""

import time

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

WEBHOOK_ROUTE = "/webhooks/prestashop/{shop_id}"
UNMATCHED = "<unmatched>"
_OUTCOME_KEY = "relance.webhook_outcome"

WEBHOOKS = Counter(
    "relance_webhooks_total",
    "Webhooks answered, by outcome (accepted, duplicate, ignored, pong; rejected for a 4xx, "
    "failed for a 5xx) and status code.",
    ["outcome", "code"],
)
DELIVERIES = Counter(
    "relance_deliveries_total",
    "Deliveries (e-mails) that reached a final status, by status and reason.",
    ["status", "reason"],
)
SMTP_ERRORS = Counter(
    "relance_smtp_errors_total",
    "SMTP errors by class: transient, recipient_rejected, permanent, internal, "
    "smtputf8_unsupported.",
    ["kind"],
)
REQUESTS = Counter(
    "relance_http_requests_total",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "code"],
)
LATENCY = Histogram(
    "relance_http_request_duration_seconds",
    "Time from the request's arrival to the end of its response, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


def webhook_answered(outcome: str, status_code: int) -> None:
    WEBHOOKS.labels(outcome, str(status_code)).inc()


def delivery_finished(status: str, reason: str | None) -> None:
    DELIVERIES.labels(status, reason or "").inc()


def smtp_error(kind: str) -> None:
    SMTP_ERRORS.labels(kind).inc()


def note_webhook_outcome(scope: Scope, outcome: str) -> None:
    """Tell the middleware what a webhook's 2xx answer was; it counts once the status is known.

    Counting in the middleware (not the route) sees every answer exactly once, including the
    errors raised by dependencies and exception handlers and a commit that fails after the
    route chose its answer (then the client gets a 503, and that is what is counted).
    """
    scope[_OUTCOME_KEY] = outcome


class MetricsMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware): a clock read and two label look-ups per request.

    Labels use the route template, never the raw path, so their number stays bounded; paths
    that match no route share one label.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            template = getattr(scope.get("route"), "path", None) or UNMATCHED
            observe(scope, template, status, time.perf_counter() - start)


def observe(scope: Scope, template: str, status: int, elapsed: float) -> None:
    """Count one answered request (the middleware above, or a route served ahead of it)."""
    method = scope["method"]
    LATENCY.labels(method, template).observe(elapsed)
    REQUESTS.labels(method, template, str(status)).inc()
    if template == WEBHOOK_ROUTE and method == "POST":
        if status < 400:
            outcome = scope.get(_OUTCOME_KEY, "unknown")
        else:
            outcome = "rejected" if status < 500 else "failed"
        webhook_answered(outcome, status)
