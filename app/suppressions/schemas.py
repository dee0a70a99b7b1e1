"""API schemas of the suppression list."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.suppressions.vocabulary import SuppressionReason
from app.validation import EmailAddress


class SuppressionCreate(BaseModel):
    """An address the shop must never write to again, and why (default `manual`)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"email": "marie@example.fr", "reason": "manual"}]},
    )

    email: EmailAddress
    reason: SuppressionReason = SuppressionReason.MANUAL


class SuppressionRead(BaseModel):
    email: str | None = Field(
        description="The normalised address; null once its personal data was erased (the "
        "address stays suppressed by its keyed hash)."
    )
    reason: SuppressionReason
    created_at: datetime


class SuppressionPage(BaseModel):
    items: list[SuppressionRead]
    next_cursor: str | None
