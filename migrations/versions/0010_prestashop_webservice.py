"""prestashop webservice: per-shop URL, encrypted key, thin-event token, reconciliation cursor

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "prestashop_webservices",
        sa.Column("shop_id", sa.String(length=40), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("key_encrypted", sa.Text(), nullable=False),
        sa.Column("thin_events", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("thin_token_hash", sa.String(length=64), nullable=True),
        sa.Column("reconciled_until", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("claimed_until", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("next_run_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_run_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.String(length=32), nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
            name=op.f("fk_prestashop_webservices_shop_id_shops"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("shop_id", name=op.f("pk_prestashop_webservices")),
        sa.UniqueConstraint(
            "thin_token_hash", name=op.f("uq_prestashop_webservices_thin_token_hash")
        ),
    )


def downgrade() -> None:
    op.drop_table("prestashop_webservices")
