"""customer context index

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 15:40:00

The customer context lists a customer's latest conversations: with (customer_id, created_at, id)
it reads 20 index entries instead of sorting the customer's whole history.
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.create_index(
            'ix_conversations_customer_created', ['customer_id', 'created_at', 'id'], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_index('ix_conversations_customer_created')
