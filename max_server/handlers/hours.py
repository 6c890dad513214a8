"""After hours: a new conversation outside its team's hours becomes ``after_hours`` with priority
``low`` (in the ingest transaction) and gets the team's after-hours message once, as a ``system``
message sent by a job, so a failing render or send never holds up ingest."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from max_server.jobs import queue
from max_server.jobs.registry import JobContext, RetryPolicy, handler
from max_server.services import hours, inbound, replies
from max_server.settings import Settings

REPLY = "after_hours.reply"


@inbound.on_message(inbound.ORDER_AFTER_HOURS)
def after_hours(session: Session, stored: inbound.Ingested, settings: Settings, now: datetime) -> None:
    if not stored.conversation_created or "rate_limited" in stored.message.flags:
        return
    conversation = stored.conversation
    if hours.mark_after_hours(session, conversation, now):
        queue.enqueue(
            session,
            REPLY,
            {"conversation_id": conversation.id},
            dedupe_key=f"{REPLY}:{conversation.id}",
            ordering_key=replies.ordering_key(conversation),
        )


@handler(REPLY, RetryPolicy(max_attempts=5, base_delay=5, max_delay=300))
def send_reply(ctx: JobContext, payload: dict[str, Any]) -> None:
    with ctx.db.session() as session:
        hours.send_after_hours_reply(session, int(payload["conversation_id"]))
