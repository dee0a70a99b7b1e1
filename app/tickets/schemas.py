"""API schemas of tickets: threads, their messages, ratings of replies and satisfaction."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)

from app.errors import validation_errors
from app.openapi import Problem
from app.shops.settings import LanguageStr
from app.tickets.vocabulary import Acknowledged, Author, Category, StatusCause, TicketStatus
from app.validation import PositiveId, email_address, no_nul, single_line

# What a helpdesk can really have recorded: nothing before 2000 (PrestaShop dates from 2007),
# nothing more than a day ahead of our clock (time zones and clock skew). Both bounds also keep
# every waiting time within the 32-bit columns and the business-hours arithmetic short.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=1)
MAX_BODY = 65_536


def _recorded(value: datetime) -> datetime:
    if value < EARLIEST:
        raise ValueError("must not be before 2000-01-01")
    if value > datetime.now(UTC) + FUTURE_SLACK:
        raise ValueError("must not be more than a day in the future")
    return value.astimezone(UTC)


def _email(value: str) -> str:
    return email_address(value.strip())


# Timezone-aware (a naive time is a 422: its zone would be a guess), and not absurd.
Recorded = Annotated[AwareDatetime, AfterValidator(_recorded)]
ExternalId = Annotated[
    str,
    Field(min_length=1, max_length=191, description="Your helpdesk's id: repeating it is safe."),
    AfterValidator(single_line),
]
CustomerEmail = Annotated[str, Field(max_length=320), AfterValidator(_email)]
Level = Literal[1, 2]
Body = Annotated[str, Field(max_length=MAX_BODY), AfterValidator(no_nul)]
Subject = Annotated[str, Field(max_length=500), AfterValidator(no_nul)]
Channel = Annotated[str, Field(min_length=1, max_length=32), AfterValidator(single_line)]


class TicketCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "external_id": "ps-thread-1042",
                    "customer_email": "marie.dupont@example.fr",
                    "order_id": 1042,
                    "language": "fr",
                    "channel": "contact_form",
                    "category": "after_sale",
                    "subject": "Où est mon colis ?",
                    "created_at": "2026-03-06T16:58:00+01:00",
                }
            ]
        },
    )

    external_id: ExternalId
    customer_email: CustomerEmail
    order_id: PositiveId | None = None
    language: LanguageStr | None = None
    channel: Channel | None = None
    category: Category
    level: Level | None = Field(
        default=None, description="1 or 2; omitted: detected from the first customer message."
    )
    subject: Subject | None = None
    created_at: Recorded | None = Field(default=None, description="Default: when received.")


class TicketUpdate(BaseModel):
    """Only the fields sent change; each status change is kept in the ticket's history."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"status": "resolved", "at": "2026-03-09T10:30:00Z"}]},
    )

    status: TicketStatus | None = None
    category: Category | None = None
    level: Level | None = None
    at: Recorded | None = Field(default=None, description="When it happened; default now.")

    @field_validator("status", "category", "level", "at")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Runs only for values sent: leaving a field out keeps it, `null` is refused.
        if value is None:
            raise ValueError("must not be null (leave the field out to keep it)")
        return value


class MessageCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "external_id": "ps-message-5531",
                    "author": "customer",
                    "sent_at": "2026-03-06T17:00:00+01:00",
                    "body": "Bonjour, mon colis n'est toujours pas arrivé.",
                    "language": "fr",
                }
            ]
        },
    )

    external_id: ExternalId
    author: Author
    sent_at: Recorded
    public: bool = Field(default=True, description="false: an internal note.")
    automatic: bool = Field(default=False, description="true: an auto-reply or notification.")
    body: Body | None = None
    language: LanguageStr | None = Field(default=None, description="Default: the ticket's.")
    needs_reply: bool | None = Field(
        default=None,
        description="Whether a customer message needs a reply; omitted: detected (a closing "
        "thanks needs none; see GET …/tickets/rules).",
    )


class RatingCreate(BaseModel):
    """The customer's ratings of one agent reply."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"speed": 5, "quality": 4}]}
    )

    speed: int = Field(ge=1, le=5)
    quality: int = Field(ge=1, le=5)


class SatisfactionCreate(BaseModel):
    """The customer's satisfaction with the ticket: CSAT, NPS, or both."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"csat": 5, "nps": 9}]}
    )

    csat: int | None = Field(default=None, ge=1, le=5)
    nps: int | None = Field(default=None, ge=0, le=10)

    @model_validator(mode="after")
    def _one(self) -> "SatisfactionCreate":
        if self.csat is None and self.nps is None:
            raise ValueError("give csat, nps or both")
        return self


class TicketRead(BaseModel):
    id: int
    external_id: str
    customer_email: str
    order_id: int | None
    language: str | None
    channel: str | None
    category: Category
    level: int | None
    level_detected: bool = Field(description="true: `level` was detected, not given.")
    status: TicketStatus
    subject: str | None
    created_at: datetime
    updated_at: datetime
    period_date: date = Field(
        description="The shop-local date the ticket counts for: its first message needing a "
        "reply, else its creation."
    )
    first_customer_at: datetime | None
    first_needing_at: datetime | None = Field(description="The first message needing a reply.")
    ack_deadline_at: datetime | None = Field(description="24 business hours after it.")
    acknowledged: Acknowledged | None = Field(
        description="Whether the first reply came by `ack_deadline_at`; `pending` while it has "
        "not and the deadline has not passed; null when no message needs a reply."
    )
    first_reply_at: datetime | None
    first_reply_business_s: int | None
    first_reply_calendar_s: int | None
    replies: int = Field(description="Public, non-automatic agent messages.")
    exchanges: int = Field(description="Public, non-automatic customer and agent messages.")
    resolved_at: datetime | None = Field(description="The first time resolved or closed.")
    resolution_s: int | None = Field(description="First customer message to `resolved_at`.")
    reopens: int
    csat: int | None
    nps: int | None
    satisfaction_at: datetime | None


class MessageRead(BaseModel):
    id: int
    ticket_id: int
    external_id: str
    author: Author
    public: bool
    automatic: bool
    body: str | None
    language: str | None
    sent_at: datetime
    period_date: date
    needs_reply: bool
    needs_reply_detected: bool = Field(description="true: `needs_reply` was detected, not given.")
    needs_reply_rule: str | None = Field(description="The detection rule that matched.")
    deadline_at: datetime | None = Field(description="24 business hours after `sent_at`.")
    answered_by: int | None = Field(description="The id of the reply that answered it.")
    answered_at: datetime | None
    reply_business_s: int | None
    reply_calendar_s: int | None
    sentiment: Literal["positive", "neutral", "negative"] | None
    speed_rating: int | None
    quality_rating: int | None
    rated_at: datetime | None
    rating_url: str | None = Field(
        description="Agent replies: a link (no login) where the customer rates this reply."
    )
    created_at: datetime


class StatusChangeRead(BaseModel):
    status: TicketStatus
    at: datetime
    cause: StatusCause


class TicketDetail(TicketRead):
    messages: list[MessageRead] = Field(description="In the order they were sent.")
    status_changes: list[StatusChangeRead] = Field(description="In the order they happened.")


class TicketPage(BaseModel):
    items: list[TicketRead]
    next_cursor: str | None


# --- Batches --------------------------------------------------------------------------------

MAX_BATCH_ITEMS = 500
MAX_ITEM_MESSAGES = 200
MAX_BATCH_MESSAGES = 2_000


class TicketBatchItem(BaseModel):
    """One thread: a ticket (created, or found by its `external_id` as POST /tickets does) or
    the id of an existing ticket, and messages of it (each as POST …/messages takes it)."""

    model_config = ConfigDict(extra="forbid")

    ticket: TicketCreate | None = Field(
        default=None, description="The same body as POST /tickets; give this or `ticket_id`."
    )
    ticket_id: PositiveId | None = Field(
        default=None, description="An existing ticket of the shop; give this or `ticket`."
    )
    messages: list[MessageCreate] = Field(
        default_factory=list,
        max_length=MAX_ITEM_MESSAGES,
        description="The same bodies as POST …/messages, recorded in this order.",
    )

    @model_validator(mode="after")
    def _one_ticket(self) -> "TicketBatchItem":
        if (self.ticket is None) == (self.ticket_id is None):
            raise ValueError("give either `ticket` or `ticket_id`")
        return self


@dataclass(frozen=True)
class InvalidItem:
    """An item of a batch that is not a valid `TicketBatchItem`: pydantic's errors, by field
    within the item. It fails alone; the other items are recorded."""

    errors: list[dict[str, Any]]


def _item_or_invalid(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    try:
        return handler(value)
    except ValidationError as exc:
        errors = exc.errors()
        if any(e["type"] == "too_long" and e["loc"] == ("messages",) for e in errors):
            raise  # a bound of the request (pydantic stops counting there), not of the item
        return InvalidItem(validation_errors(list(errors)))


def _count_messages(items: Any) -> Any:
    if isinstance(items, list):
        total = sum(
            len(i["messages"])
            for i in items
            if isinstance(i, dict) and isinstance(i.get("messages"), list)
        )
        if total > MAX_BATCH_MESSAGES:
            raise ValueError(f"at most {MAX_BATCH_MESSAGES} messages in all the items")
    return items


BatchItem = Annotated[TicketBatchItem, WrapValidator(_item_or_invalid)]


class TicketBatchCreate(BaseModel):
    """Tickets and messages recorded as if posted one by one, in this order; each item
    succeeds or fails as a whole, alone."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "ticket": {
                                "external_id": "ps-thread-1042",
                                "customer_email": "marie.dupont@example.fr",
                                "category": "after_sale",
                                "language": "fr",
                                "created_at": "2026-03-06T16:58:00+01:00",
                            },
                            "messages": [
                                {
                                    "external_id": "ps-message-5531",
                                    "author": "customer",
                                    "sent_at": "2026-03-06T17:00:00+01:00",
                                    "body": "Bonjour, mon colis n'est toujours pas arrivé.",
                                },
                                {
                                    "external_id": "ps-message-5540",
                                    "author": "agent",
                                    "sent_at": "2026-03-09T10:00:00+01:00",
                                    "body": "Il arrive demain.",
                                },
                            ],
                        },
                        {
                            "ticket_id": 7,
                            "messages": [
                                {
                                    "external_id": "ps-message-5541",
                                    "author": "customer",
                                    "sent_at": "2026-03-09T10:05:00+01:00",
                                    "body": "Merci !",
                                }
                            ],
                        },
                    ]
                }
            ]
        },
    )

    items: list[BatchItem] = Field(min_length=1, max_length=MAX_BATCH_ITEMS)

    @field_validator("items", mode="before")
    @classmethod
    def _bounded(cls, items: Any) -> Any:
        return _count_messages(items)


class BatchMessageResult(BaseModel):
    index: int = Field(description="The message's index in its item's `messages`.")
    status: Literal[200, 201] = Field(description="201 recorded; 200 already recorded.")
    id: int
    external_id: str


class BatchItemResult(BaseModel):
    index: int = Field(description="The item's index in `items`.")
    status: int = Field(
        description="201: something of it was recorded; 200: all of it was already; 4xx: "
        "nothing of it was recorded, `problem` says why."
    )
    ticket: TicketRead | None = Field(
        default=None, description="The ticket as the whole batch left it (successes only)."
    )
    ticket_status: Literal[200, 201] | None = Field(
        default=None, description="201: the ticket was created; 200: it existed."
    )
    messages: list[BatchMessageResult] = Field(default_factory=list)
    problem: Problem | None = Field(
        default=None,
        description="Why the item failed; `errors[].loc` names the field from the body's "
        'root: `["body", "items", 3, "messages", 0, "sent_at"]`.',
    )


class TicketBatchResult(BaseModel):
    results: list[BatchItemResult] = Field(description="One per item, in the same order.")
    succeeded: int
    failed: int
