"""Merchant templates: save (checked), read, delete; the ones a batch of e-mails uses; preview
and the test e-mail. Every function runs in the caller's transaction, except `send_test`,
which runs in none.
"""

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from app.config import Settings
from app.dialect import PerDialect
from app.emailtemplates import rendering
from app.emailtemplates.models import EmailTemplate
from app.emailtemplates.rendering import MerchantTemplate, TemplateKind
from app.errors import AppError, InvalidInput, NotFound
from app.mail.message import Outgoing
from app.mail.review_request import ReviewEmail, compose, context
from app.mail.templates import Rendered, render_review_request
from app.mail.transport import SendError, transport_from_url
from app.orders.models import Order
from app.shops.service import ShopAccount

# What the links of a preview or a test e-mail carry: never a real request's public id (those
# are 16 characters), so a click on them changes nothing for any customer.
SAMPLE_PUBLIC_ID = "sample"
TEST_HEADER = "X-Relance-Test"

_SAMPLE_NAMES = {
    "de": ("Anna", "Schmidt"),
    "en": ("Jane", "Smith"),
    "es": ("Lucía", "García"),
    "fr": ("Marie", "Dupont"),
    "it": ("Giulia", "Rossi"),
}
_SAMPLE_PRODUCTS = [
    {
        "id": 12,
        "name": "Mug",
        "reference": "MUG-01",
        "quantity": 1,
        "url": "https://shop.example/12-mug.html",
        "image_url": "https://shop.example/img/12.jpg",
    }
]


class MailNotSent(AppError):
    """The mail server refused the test e-mail or could not be reached."""

    status = 502
    type = "https://relance.dev/problems/mail-not-sent"
    title = "The e-mail was not sent"


_COLUMNS = (
    EmailTemplate.kind,
    EmailTemplate.language,
    EmailTemplate.subject,
    EmailTemplate.html,
    EmailTemplate.text,
    EmailTemplate.updated_at,
)


async def get(
    conn: AsyncConnection, shop_id: str, kind: TemplateKind, language: str
) -> dict[str, Any] | None:
    """The shop's saved template for a kind and language, or None (the defaults apply)."""
    row = (
        (
            await conn.execute(
                select(*_COLUMNS).where(
                    EmailTemplate.shop_id == shop_id,
                    EmailTemplate.kind == kind,
                    EmailTemplate.language == language,
                )
            )
        )
        .mappings()
        .first()
    )
    return None if row is None else dict(row)


_UPSERT = PerDialect(
    lambda insert_: (
        stmt := insert_(EmailTemplate).values(
            shop_id=bindparam("b_shop"),
            kind=bindparam("b_kind"),
            language=bindparam("b_language"),
            subject=bindparam("b_subject"),
            html=bindparam("b_html"),
            text=bindparam("b_text"),
            updated_at=bindparam("b_now"),
        )
    ).on_conflict_do_update(
        index_elements=[EmailTemplate.shop_id, EmailTemplate.kind, EmailTemplate.language],
        set_={
            "subject": stmt.excluded.subject,
            "html": stmt.excluded.html,
            "text": stmt.excluded.text,
            "updated_at": stmt.excluded.updated_at,
        },
    )
)


async def save(
    conn: AsyncConnection,
    shop_id: str,
    kind: TemplateKind,
    language: str,
    template: MerchantTemplate,
    now: datetime,
) -> tuple[dict[str, Any], bool]:
    """Check and store a template; returns it and whether it is new.

    Refused (InvalidInput, each error naming its field and line) when `rendering.check` finds
    anything wrong.
    """
    problems = rendering.check(template, kind)
    if problems:
        errors = [{"loc": ["body", p.field], "msg": str(p)} for p in problems]
        first = problems[0]
        raise InvalidInput(f"The template's {first.field} is refused: {first}", errors)
    existed = await get(conn, shop_id, kind, language) is not None
    await conn.execute(
        _UPSERT.on(conn),
        {
            "b_shop": shop_id,
            "b_kind": kind,
            "b_language": language,
            "b_subject": template.subject,
            "b_html": template.html,
            "b_text": template.text,
            "b_now": now,
        },
    )
    saved = await get(conn, shop_id, kind, language)
    assert saved is not None
    return saved, not existed


async def remove(conn: AsyncConnection, shop_id: str, kind: TemplateKind, language: str) -> bool:
    """Delete a saved template (the defaults apply again); False when there was none."""
    done = await conn.execute(
        delete(EmailTemplate).where(
            EmailTemplate.shop_id == shop_id,
            EmailTemplate.kind == kind,
            EmailTemplate.language == language,
        )
    )
    return bool(done.rowcount)


async def saved_for(
    conn: AsyncConnection, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], dict[str, MerchantTemplate]]:
    """The saved templates of these (shop id, language) pairs, by kind, in one query."""
    wanted = sorted(set(keys))
    found: dict[tuple[str, str], dict[str, MerchantTemplate]] = {}
    if not wanted:
        return found
    rows = await conn.execute(
        select(
            EmailTemplate.shop_id,
            EmailTemplate.language,
            EmailTemplate.kind,
            EmailTemplate.subject,
            EmailTemplate.html,
            EmailTemplate.text,
        ).where(tuple_(EmailTemplate.shop_id, EmailTemplate.language).in_(wanted))
    )
    for r in rows:
        found.setdefault((r.shop_id, r.language), {})[r.kind] = MerchantTemplate(
            r.subject, r.html, r.text
        )
    return found


async def _email(
    conn: AsyncConnection,
    shop: ShopAccount,
    kind: TemplateKind,
    language: str,
    order_id: int | None,
    to: str,
    settings: Settings,
    now: datetime,
) -> tuple[ReviewEmail, MerchantTemplate | None]:
    """The e-mail a preview shows: a sample order, or one of the shop's, and its template."""
    shop_settings = shop.settings
    firstname, lastname = _SAMPLE_NAMES.get(language, _SAMPLE_NAMES["en"])
    reference: str | None = "XKBKNABJK"
    ordered_at: datetime | None = now - timedelta(days=5)
    products: list[dict[str, Any]] = _SAMPLE_PRODUCTS
    if order_id is not None:
        order = (
            await conn.execute(
                select(
                    Order.firstname,
                    Order.lastname,
                    Order.reference,
                    Order.ordered_at,
                    Order.products,
                ).where(Order.shop_id == shop.id, Order.order_id == order_id)
            )
        ).first()
        if order is None:
            raise NotFound(f"No order {order_id} in this shop.")
        firstname, lastname, reference = order.firstname, order.lastname, order.reference
        ordered_at, products = order.ordered_at, order.products or []
    saved = await saved_for(conn, [(shop.id, language)])
    # `reminder` previews the template of reminders without one of their own number.
    number = int(kind.rpartition("_")[2]) if kind.startswith("reminder_") else 0
    template = rendering.pick(saved.get((shop.id, language), {}), kind.is_reminder, number)
    email = ReviewEmail(
        public_id=SAMPLE_PUBLIC_ID,
        message_id=f"<relance.test.{uuid.uuid4().hex[:16]}@{settings.message_id_domain}>",
        to=to,
        language=language,
        is_reminder=kind.is_reminder,
        shop_name=shop.name,
        timezone=shop_settings.timezone,
        firstname=firstname,
        lastname=lastname,
        order_reference=reference,
        ordered_at=ordered_at,
        products=products,
        from_email=shop_settings.from_email or settings.default_from,
        from_name=shop_settings.from_name or shop.name,
        reply_to=shop_settings.reply_to,
    )
    return email, template


async def preview(
    conn: AsyncConnection,
    shop: ShopAccount,
    kind: TemplateKind,
    language: str,
    order_id: int | None,
    settings: Settings,
    now: datetime,
) -> tuple[Rendered, bool]:
    """The e-mail of this kind and language as a customer would get it; whether the shop's
    own template rendered it. Links lead to a sample that is no customer's request."""
    email, template = await _email(conn, shop, kind, language, order_id, "", settings, now)
    variables = context(email, public_url=settings.public_url, secret_key=settings.secret_key)
    if template is None:
        return render_review_request(language, variables), False
    return _render_or_refuse(template, variables), True


def _render_or_refuse(template: MerchantTemplate, variables: Mapping[str, Any]) -> Rendered:
    """The shop's template rendered for a preview or a test e-mail; a 422 naming the order
    when it does not render for that one (a template saved against the sample order can pass
    a limit on a real order: its 1,000 products, say), never a 500."""
    try:
        return rendering.render(template, variables)
    except Exception as exc:
        said = (str(exc) or type(exc).__name__)[:300]
        raise InvalidInput(
            f"The shop's template does not render for this order: {said}",
            [{"loc": ["body", "order_id"], "msg": said}],
        ) from None


async def compose_test(
    conn: AsyncConnection,
    shop: ShopAccount,
    kind: TemplateKind,
    language: str,
    order_id: int | None,
    to: str,
    settings: Settings,
    now: datetime,
) -> tuple[Outgoing, str, bool]:
    """The test e-mail (marked `X-Relance-Test: 1`), its envelope sender, and whether the
    shop's own template rendered it."""
    email, template = await _email(conn, shop, kind, language, order_id, to, settings, now)
    outgoing = compose(
        email,
        public_url=settings.public_url,
        secret_key=settings.secret_key,
        now=now,
        render=None if template is None else lambda v: _render_or_refuse(template, v),
        headers={TEST_HEADER: "1"},
    )
    return outgoing, email.from_email, template is not None


async def send_test(message: Outgoing, sender: str, to: str, settings: Settings) -> None:
    """Hand the test e-mail to the configured transport now; recorded nowhere.

    MailNotSent when the server refuses it or cannot be reached.
    """
    transport = transport_from_url(settings.mail_url, settings.smtp_timeout)
    try:
        await transport.send(message, sender, to)
    except SendError as exc:
        raise MailNotSent(f"The mail server did not take the e-mail: {exc}") from None
    except OSError as exc:  # the file outbox: a full or read-only disk
        raise MailNotSent(f"The e-mail could not be written: {type(exc).__name__}") from None
    finally:
        await transport.close()
