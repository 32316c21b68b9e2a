"""orders by customer and state: the chat's load finds the latest completed order by index

Revision ID: e5b0d7c3a912
Revises: a3f1c9e2b7d4
Create Date: 2026-12-07 16:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = 'e5b0d7c3a912'
down_revision: str | None = 'a3f1c9e2b7d4'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index(
            'ix_orders_customer_state', ['customer_id', 'state', 'created_at', 'id'], unique=False
        )
        batch_op.drop_index('ix_orders_customer_id')


def downgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index('ix_orders_customer_id', ['customer_id'], unique=False)
        batch_op.drop_index('ix_orders_customer_state')
