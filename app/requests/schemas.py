"""API schemas of review requests and their deliveries."""

from datetime import datetime

from pydantic import BaseModel

from app.requests.vocabulary import Kind, Reason, Source, Status


class DeliveryRead(BaseModel):
    id: int
    kind: Kind
    seq: int
    status: Status
    reason: Reason | None
    due_at: datetime
    sent_at: datetime | None
    attempts: int
    message_id: str | None
    last_error: str | None
    dry_run: bool = False


class ReviewRequestRead(BaseModel):
    id: int
    order_id: int
    email: str
    language: str
    status: Status
    reason: Reason | None
    source: Source
    due_at: datetime
    sent_at: datetime | None
    trigger_at: datetime
    attempts: int
    dry_run: bool = False
    created_at: datetime
    updated_at: datetime


class TimelineStep(BaseModel):
    at: datetime
    step: str
    detail: str


class ReviewRequestDetail(ReviewRequestRead):
    deliveries: list[DeliveryRead]
    timeline: list[TimelineStep]


class ReviewRequestPage(BaseModel):
    items: list[ReviewRequestRead]
    next_cursor: str | None
