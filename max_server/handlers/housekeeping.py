"""Housekeeping: pruning events, finished jobs and periodic ticks past their retention."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from max_server.jobs import queue
from max_server.jobs.registry import JobContext, RetryPolicy, handler, periodic
from max_server.jobs.scheduler import prune_ticks
from max_server.services import events

HOUR = 3600


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


periodic("events.prune", HOUR)
periodic("jobs.prune", HOUR)
