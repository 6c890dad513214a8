"""customer blocks: start and conversation

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 10:00:00

A rate-limit block holds only messages written (customer time) from its start until its end, so
a message Meta replays out of order from before a burst is not held by the burst's block.
Existing blocks start at their creation time (the best figure they have). Blocks also name the
conversation whose message tripped them (their ``customer.rate_limited`` event and notification
open it).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import max_server.models.base

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customer_blocks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("conversation_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column("starts_at", max_server.models.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_customer_blocks_conversation_id_conversations"),
            "conversations",
            ["conversation_id"],
            ["id"],
            ondelete="SET NULL",
        )
    op.execute("UPDATE customer_blocks SET starts_at = created_at")
    with op.batch_alter_table("customer_blocks", schema=None) as batch_op:
        batch_op.alter_column(
            "starts_at", existing_type=max_server.models.base.UTCDateTime(timezone=True), nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("customer_blocks", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_customer_blocks_conversation_id_conversations"), type_="foreignkey"
        )
        batch_op.drop_column("starts_at")
        batch_op.drop_column("conversation_id")
