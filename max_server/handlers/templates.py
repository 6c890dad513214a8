"""Templates: Meta's status, quality and category webhooks, and the sync every 15 minutes."""

from __future__ import annotations

from typing import Any

from max_server.channels.whatsapp import ingest
from max_server.channels.whatsapp.graph import GraphError, GraphUnreachable
from max_server.jobs.registry import JobContext, PermanentFailure, RetryLater, RetryPolicy, handler, periodic
from max_server.services import template_updates

SYNC_EVERY = 15 * 60

ingest.on_template_update(template_updates.on_template_update)


@handler(template_updates.SYNC_JOB, RetryPolicy(max_attempts=3, base_delay=30, max_delay=300))
def sync_templates(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Pulls Meta's template list (no-op without WhatsApp credentials)."""
    try:
        template_updates.sync(ctx.db, ctx.settings)
    except GraphUnreachable as exc:
        raise RetryLater(str(exc)) from None
    except GraphError as exc:
        if exc.retryable:
            raise RetryLater(str(exc)) from None
        raise PermanentFailure(str(exc)) from None


periodic(template_updates.SYNC_JOB, SYNC_EVERY)
