"""SLA: deadlines follow every conversation change; the monitor runs every minute, once per
cluster; policy and calendar changes recompute open conversations' deadlines."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from max_server import clock
from max_server.jobs.registry import JobContext, RetryPolicy, handler, periodic
from max_server.models import Conversation
from max_server.services import conversation_rows, sla, sla_monitor, sla_policies

MONITOR = "sla.monitor"
MONITOR_INTERVAL = 60
MAX_BATCHES = 50  # a tick looks at no more than 50 × 200 conversations; the next tick goes on


@conversation_rows.on_change(30)
def follow_conversation(
    session: Session, conversation: Conversation, fields: frozenset[str], now: datetime
) -> None:
    sla.refresh(session, conversation, fields, now)


@handler(MONITOR, RetryPolicy(max_attempts=2, base_delay=10, max_delay=30))
def monitor(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Warn, record breaches and escalate for every conversation due a check, batch by batch
    (one short transaction each; rows another process holds are skipped, not waited for)."""
    now = clock.now()
    for _ in range(MAX_BATCHES):
        with ctx.db.session() as session:
            seen = sla_monitor.sweep_batch(session, now)
            session.commit()
        if seen < sla.BATCH:
            return


@handler(sla_policies.RECOMPUTE, RetryPolicy(max_attempts=5))
def recompute(ctx: JobContext, payload: dict[str, Any]) -> None:
    team_id, priority = int(payload["team_id"]), payload.get("priority")
    now = clock.now()
    last: int | None = 0
    while last is not None:
        with ctx.db.session() as session:
            last = sla.recompute(session, team_id, priority, now, after_id=last)
            session.commit()


periodic(MONITOR, MONITOR_INTERVAL)
