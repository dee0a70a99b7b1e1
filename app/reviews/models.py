"""A review per request (order), and its per-product ratings."""

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigId


class Review(Base):
    __tablename__ = "reviews"
    __table_args__ = (
        Index("ix_reviews_list", "shop_id", "id"),
        Index("ix_reviews_status", "shop_id", "status", "id"),
        Index("ix_reviews_created", "shop_id", "created_at"),  # the KPIs' reviews of a period
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    request_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("review_requests.id", ondelete="CASCADE"), unique=True
    )
    order_id: Mapped[int] = mapped_column(BigInteger)
    rating: Mapped[int]
    comment: Mapped[str | None] = mapped_column(Text)
    nps: Mapped[int | None]
    status: Mapped[str] = mapped_column(String(16))
    reply: Mapped[str | None] = mapped_column(Text)
    replied_at: Mapped[datetime | None]
    language: Mapped[str] = mapped_column(String(8))
    # positive / neutral / negative, of the comment (`app/sentiment`); None without one.
    sentiment: Mapped[str | None] = mapped_column(String(8))
    # The date of the purchase experience (French consumer law asks for it beside the review).
    purchased_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ReviewProduct(Base):
    """The rating one product of the order received (the product reviews shops show)."""

    __tablename__ = "review_products"
    __table_args__ = (Index("ix_review_products_product", "shop_id", "product_id"),)

    review_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("reviews.id", ondelete="CASCADE"), primary_key=True
    )
    product_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    product_attribute_id: Mapped[int] = mapped_column(
        BigInteger, primary_key=True, autoincrement=False
    )
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    name: Mapped[str | None] = mapped_column(String(500))
    rating: Mapped[int]
