"""Every table, imported once so that Alembic and the tests see the whole metadata."""

from app.alerts.models import Alert
from app.db import Base
from app.emailtemplates.models import EmailTemplate
from app.hooks.models import HookAttempt, HookDelivery, HookEndpoint
from app.kpis.models import ExpertiseSnapshot
from app.orders.models import Order, OrderHistory
from app.prestashop.models import PrestashopWebservice
from app.requests.models import Delivery, ReviewRequest
from app.reviews.models import Review, ReviewProduct
from app.shops.models import OrderState, Shop, ShopApiKey, ShopWebhookSecret
from app.suppressions.models import Suppression
from app.tickets.models import BusinessHours, Ticket, TicketMessage, TicketStatusChange
from app.webhooks.models import WebhookEvent

metadata = Base.metadata

__all__ = [
    "Alert",
    "BusinessHours",
    "Delivery",
    "EmailTemplate",
    "ExpertiseSnapshot",
    "HookAttempt",
    "HookDelivery",
    "HookEndpoint",
    "Order",
    "OrderHistory",
    "OrderState",
    "PrestashopWebservice",
    "Review",
    "ReviewProduct",
    "ReviewRequest",
    "Shop",
    "ShopApiKey",
    "ShopWebhookSecret",
    "Suppression",
    "Ticket",
    "TicketMessage",
    "TicketStatusChange",
    "WebhookEvent",
    "metadata",
]
