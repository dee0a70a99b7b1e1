"""The review-request e-mail: its links, its context, its MIME message."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.mail.message import Outgoing, build
from app.mail.templates import Rendered, localized_date, render_review_request
from app.security import REVIEW, UNSUBSCRIBE, sign_token


@dataclass(frozen=True)
class ReviewEmail:
    """Everything one review-request e-mail says, and to whom."""

    public_id: str  # of the request: what its links carry
    message_id: str
    to: str
    language: str
    is_reminder: bool
    shop_name: str
    timezone: str
    firstname: str | None
    order_reference: str | None
    ordered_at: datetime | None
    products: list[dict[str, Any]]
    from_email: str
    from_name: str
    reply_to: str | None
    lastname: str | None = None


def review_url(public_url: str, secret_key: str, public_id: str) -> str:
    """The signed link of the hosted review page of one request."""
    return f"{public_url.rstrip('/')}/r/{sign_token(secret_key, REVIEW, public_id)}"


def unsubscribe_url(public_url: str, secret_key: str, public_id: str) -> str:
    """The signed link of the unsubscribe page (and RFC 8058 one-click target) of a request."""
    return f"{public_url.rstrip('/')}/u/{sign_token(secret_key, UNSUBSCRIBE, public_id)}"


def context(email: ReviewEmail, *, public_url: str, secret_key: str) -> dict[str, Any]:
    """The template variables of one e-mail (docs/templates.md lists them)."""
    url = review_url(public_url, secret_key, email.public_id)
    return {
        "shop_name": email.shop_name,
        "firstname": email.firstname,
        "lastname": email.lastname,
        "order_reference": email.order_reference,
        "order_date": localized_date(email.ordered_at, email.language, email.timezone),
        "products": email.products,
        "review_url": url,
        "star_urls": [f"{url}?rating={n}" for n in range(1, 6)],
        "unsubscribe_url": unsubscribe_url(public_url, secret_key, email.public_id),
        "is_reminder": email.is_reminder,
    }


def compose(
    email: ReviewEmail,
    *,
    public_url: str,
    secret_key: str,
    now: datetime,
    render: Callable[[dict[str, Any]], Rendered] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Outgoing:
    """Render the e-mail in its language and build the message, dated `now`.

    `render` renders a merchant's template instead of ours; `headers` are added as they are.
    """
    variables = context(email, public_url=public_url, secret_key=secret_key)
    rendered = render(variables) if render else render_review_request(email.language, variables)
    return build(
        rendered=rendered,
        to=email.to,
        from_email=email.from_email,
        from_name=email.from_name,
        reply_to=email.reply_to,
        message_id=email.message_id,
        date=now,
        language=email.language,
        unsubscribe_url=variables["unsubscribe_url"],
        headers=headers,
    )
