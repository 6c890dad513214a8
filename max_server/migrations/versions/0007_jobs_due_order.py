"""jobs: claim by due time

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 09:00:00

Workers claim queued jobs by due time, coalesce(run_at, created_at), so a retry or a scheduled job
that came due is not starved by a stream of new jobs (run_at NULL). The index follows the
expression: the claim reads the first due entries instead of sorting every queued job.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUEUED = "state = 'queued'"


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index(
            'ix_jobs_queued_run_at', postgresql_where=sa.text(QUEUED), sqlite_where=sa.text(QUEUED)
        )
        batch_op.create_index(
            'ix_jobs_queued_due',
            [sa.text('coalesce(run_at, created_at)'), 'id'],
            unique=False,
            postgresql_where=sa.text(QUEUED),
            sqlite_where=sa.text(QUEUED),
        )


def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index(
            'ix_jobs_queued_due', postgresql_where=sa.text(QUEUED), sqlite_where=sa.text(QUEUED)
        )
        batch_op.create_index(
            'ix_jobs_queued_run_at',
            ['run_at', 'id'],
            unique=False,
            postgresql_where=sa.text(QUEUED),
            sqlite_where=sa.text(QUEUED),
        )
