"""Outbound webhooks: deliveries created as events are sequenced, one job per attempt, and a
daily prune of old deliveries."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from max_server.jobs import queue
from max_server.jobs.registry import JobContext, RetryPolicy, batch_handler, handler, periodic
from max_server.services import events, webhook_delivery, webhook_fanout

DAY = 86400

events.on_sequenced(webhook_fanout.create_deliveries)


# The schedule between attempts is the delivery's own (each attempt queues the next); this
# policy only covers a handler that could not record its attempt (the database blinked).
@handler(webhook_delivery.JOB, RetryPolicy(max_attempts=5, base_delay=5, max_delay=300))
def deliver(ctx: JobContext, payload: dict[str, Any]) -> None:
    webhook_delivery.deliver(ctx.db, ctx.settings, payload)


@batch_handler(webhook_delivery.JOB)
def deliver_batch(contexts: list[JobContext], payloads: list[dict[str, Any]]) -> list[BaseException | None]:
    """The jobs a worker claimed together: one read and one write for all their successes."""
    outcomes = webhook_delivery.deliver_many(contexts[0].db, contexts[0].settings, payloads)
    return [outcome if isinstance(outcome, BaseException) else None for outcome in outcomes]


@handler("webhooks.prune", RetryPolicy(max_attempts=3))
def prune(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Finished deliveries and their attempts are kept as long as events (events.retention_days)."""
    while True:
        with ctx.db.session() as session:
            cutoff = queue.db_now(session) - timedelta(days=ctx.settings.events.retention_days)
            deleted = webhook_delivery.prune(session, cutoff)
            session.commit()
        if not deleted:
            return


periodic("webhooks.prune", DAY)
