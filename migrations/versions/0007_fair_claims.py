"""fair claims: due deliveries by shop; a shop server's limit of connections

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 00:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('shop_mail_servers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('max_connections', sa.Integer(), nullable=True))
    op.create_index(
        'ix_deliveries_shop_due',
        'deliveries',
        ['shop_id', 'due_at'],
        unique=False,
        sqlite_where=sa.text("status = 'scheduled'"),
        postgresql_where=sa.text("status = 'scheduled'"),
    )


def downgrade() -> None:
    with op.batch_alter_table('shop_mail_servers', schema=None) as batch_op:
        batch_op.drop_column('max_connections')
    op.drop_index(
        'ix_deliveries_shop_due',
        table_name='deliveries',
        sqlite_where=sa.text("status = 'scheduled'"),
        postgresql_where=sa.text("status = 'scheduled'"),
    )
