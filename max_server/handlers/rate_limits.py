"""The rate-limit gate at ingest, and the daily cleanup of old counters."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from max_server.jobs import queue
from max_server.jobs.registry import JobContext, RetryPolicy, handler, periodic
from max_server.services import inbound, rate_limits
from max_server.settings import Settings


@inbound.on_message(inbound.ORDER_RATE_LIMITS)
def gate(session: Session, stored: inbound.Ingested, settings: Settings, now: datetime) -> None:
    rate_limits.gate(session, stored, settings.rate_limits, now)


@handler("rate_limits.prune", RetryPolicy(max_attempts=3))
def prune(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Counters older than a day (windows are at most an hour) go, in batches."""
    while True:
        with ctx.db.session() as session:
            deleted = rate_limits.prune(session, queue.db_now(session) - timedelta(days=1))
            session.commit()
        if not deleted:
            return


periodic("rate_limits.prune", 86400)
