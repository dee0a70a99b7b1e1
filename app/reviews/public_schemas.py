"""Schemas of the public, read-only reviews API (no key): what a shop's visitors may see."""

from datetime import datetime

from pydantic import BaseModel, Field


class PublicProductRating(BaseModel):
    """The rating the customer gave one product of the order."""

    product_id: int
    product_attribute_id: int
    name: str | None
    rating: int = Field(ge=1, le=5)


class PublicReview(BaseModel):
    """A published review, with no personal data beyond the first name and an initial."""

    id: int
    rating: int = Field(ge=1, le=5, description="The rating of the whole order (the shop).")
    comment: str | None
    author: str | None = Field(
        description="The customer's first name and the initial of the last name ('Marie D.'); "
        "null when the shop does not know the first name."
    )
    language: str
    created_at: datetime = Field(description="When the review was written.")
    purchased_at: datetime | None = Field(description="When the order was placed.")
    products: list[PublicProductRating]
    reply: str | None = Field(description="The merchant's public reply.")
    replied_at: datetime | None


class PublicReviewPage(BaseModel):
    items: list[PublicReview]
    next_cursor: str | None


class RatingSummary(BaseModel):
    """Published ratings: how many, their mean, and how many of each value."""

    model_config = {
        "json_schema_extra": {
            "example": {
                "count": 4,
                "mean": 4.25,
                "distribution": {"1": 0, "2": 0, "3": 1, "4": 1, "5": 2},
            }
        }
    }

    count: int
    mean: float | None = Field(description="Rounded to two decimals; null when count is 0.")
    distribution: dict[str, int] = Field(description="Keys '1' to '5', each a count.")
