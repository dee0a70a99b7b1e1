"""API schemas of reviews."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ReviewStatus = Literal["pending", "published", "rejected"]


class ReviewProductRead(BaseModel):
    product_id: int
    product_attribute_id: int
    name: str | None
    rating: int


class ReviewRead(BaseModel):
    id: int
    order_id: int
    request_id: int
    rating: int = Field(ge=1, le=5)
    comment: str | None
    nps: int | None
    products: list[ReviewProductRead]
    status: ReviewStatus
    reply: str | None
    replied_at: datetime | None
    language: str
    purchased_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ReviewPage(BaseModel):
    items: list[ReviewRead]
    next_cursor: str | None


class ReviewUpdate(BaseModel):
    """Moderation: publish or reject, and the merchant's public reply (empty removes it)."""

    model_config = ConfigDict(extra="forbid")

    status: ReviewStatus | None = None
    reply: str | None = Field(default=None, max_length=5000)
