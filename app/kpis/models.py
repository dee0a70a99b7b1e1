"""The weekly expertise snapshots: the only table of `kpis` (every figure else is computed)."""

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigId


class ExpertiseSnapshot(Base):
    """A shop's level as of one Monday (its zone); unique, so no replica doubles one."""

    __tablename__ = "expertise_snapshots"
    __table_args__ = (UniqueConstraint("shop_id", "week_start"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    week_start: Mapped[date]  # the Monday it is taken on
    level: Mapped[str] = mapped_column(String(16))
    # The whole answer of GET .../expertise at that time: criteria, next level, advice.
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    computed_at: Mapped[datetime]
