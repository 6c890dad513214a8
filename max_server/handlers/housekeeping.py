"""Housekeeping: pruning events, finished jobs, periodic ticks and orphaned delivery statuses
past their retention."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from max_server.jobs import queue
from max_server.jobs.registry import JobContext, RetryPolicy, handler, periodic
from max_server.jobs.scheduler import prune_ticks
from max_server.services import events, statuses

HOUR = 3600
DAY = 24 * HOUR
# A status still waiting for its message after a week never will: Meta sends them within
# seconds of the send's answer, and retries for at most a few days.
PENDING_STATUS_DAYS = 7


@handler("events.prune", RetryPolicy(max_attempts=3))
def prune_events(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Deletes events past ``events.retention_days``, in batches (short transactions)."""
    while True:
        with ctx.db.session() as session:
            cutoff = queue.db_now(session) - timedelta(days=ctx.settings.events.retention_days)
            deleted = events.prune(session, cutoff)
            session.commit()
        if not deleted:
            return


@handler("jobs.prune", RetryPolicy(max_attempts=3))
def prune_jobs(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Deletes finished jobs past ``jobs.retention_days`` (dead ones after four times that)."""
    days = ctx.settings.jobs.retention_days
    while True:
        with ctx.db.session() as session:
            now = queue.db_now(session)
            deleted = queue.prune(
                session, done_before=now - timedelta(days=days), dead_before=now - timedelta(days=4 * days)
            )
            session.commit()
        if not deleted:
            break
    while True:
        with ctx.db.session() as session:
            deleted = prune_ticks(session, queue.db_now(session) - timedelta(days=2))
            session.commit()
        if not deleted:
            return


@handler("statuses.prune", RetryPolicy(max_attempts=3))
def prune_pending_statuses(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Deletes delivery statuses that waited more than a week for their message id, in batches."""
    while True:
        with ctx.db.session() as session:
            cutoff = queue.db_now(session) - timedelta(days=PENDING_STATUS_DAYS)
            deleted = statuses.prune_pending(session, cutoff)
            session.commit()
        if not deleted:
            return


periodic("events.prune", HOUR)
periodic("jobs.prune", HOUR)
periodic("statuses.prune", DAY)
