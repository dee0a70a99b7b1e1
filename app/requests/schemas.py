"""API schemas of review requests and their deliveries."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

RequestStatus = Literal["scheduled", "sending", "sent", "cancelled", "skipped", "failed"]


class DeliveryRead(BaseModel):
    id: int
    kind: Literal["first", "reminder"]
    seq: int
    status: RequestStatus
    reason: str | None
    due_at: datetime
    sent_at: datetime | None
    attempts: int
    message_id: str | None
    last_error: str | None


class ReviewRequestRead(BaseModel):
    id: int
    order_id: int
    email: str
    language: str
    status: RequestStatus
    reason: str | None
    source: Literal["trigger", "fallback"]
    due_at: datetime
    sent_at: datetime | None
    trigger_at: datetime
    attempts: int
    created_at: datetime
    updated_at: datetime


class ReviewRequestDetail(ReviewRequestRead):
    deliveries: list[DeliveryRead]


class ReviewRequestPage(BaseModel):
    items: list[ReviewRequestRead]
    next_cursor: str | None
