"""notices told with the chat's save: no lease on an order's notice

Revision ID: a3f1c9e2b7d4
Revises: 61276571c4fe
Create Date: 2026-12-07 07:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = 'a3f1c9e2b7d4'
down_revision: str | None = '61276571c4fe'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_column('notice_lease_until')


def downgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('notice_lease_until', storage.models.UtcDateTime(timezone=True), nullable=True)
        )
