"""Delivery statuses of outbound messages: forward only, failures kept with Meta's reason.

``sent < delivered < read < played``; ``failed`` replaces anything short of delivered; a message
we marked ``unknown`` (worker lost mid-send) learns the truth from any status Meta sends. A status
for a message id we do not know yet waits in ``pending_statuses`` and is applied when the send
records the id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, delete, select

from max_server.models import Conversation, Message, PendingStatus
from max_server.services import conversation_rows, events, present

RANK = {"pending": 0, "sending": 1, "unknown": 1, "sent": 2, "delivered": 3, "read": 4, "played": 5}
WINDOW_CLOSED_CODES = {131047}


def _error(errors: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not errors:
        return None
    first = errors[0]
    details = (
        first.get("error_data", {}).get("details") if isinstance(first.get("error_data"), dict) else None
    )
    return {
        "code": first.get("code"),
        "title": first.get("title") or first.get("message"),
        "message": first.get("message"),
        "details": details,
    }


def moves_forward(current: str, new: str) -> bool:
    if new == "failed":
        return RANK.get(current, 0) < RANK["delivered"] and current != "failed"
    if current == "failed":
        return False
    if new not in RANK:
        return False
    return RANK[new] > RANK.get(current, 0) or (current == "unknown" and RANK[new] >= RANK["sent"])


def apply(
    session: Session,
    channel: str,
    channel_message_id: str,
    status: str,
    occurred_at: datetime | None,
    errors: list[dict[str, Any]],
    raw: dict[str, Any],
    now: datetime,
) -> str:
    """Applies a status. Returns "applied", "ignored" (not forward) or "pending" (unknown id)."""
    message = session.exec(
        select(Message).where(Message.channel == channel, Message.channel_message_id == channel_message_id)
    ).first()
    if message is None:
        session.add(
            PendingStatus(
                channel=channel,
                channel_message_id=channel_message_id,
                status=status,
                occurred_at=occurred_at,
                payload={"errors": errors, "raw": raw},
            )
        )
        return "pending"
    return "applied" if _apply_to(session, message, status, occurred_at, errors, now) else "ignored"


def _apply_to(
    session: Session,
    message: Message,
    status: str,
    occurred_at: datetime | None,
    errors: list[dict[str, Any]],
    now: datetime,
) -> bool:
    if not moves_forward(message.delivery_status, status):
        return False
    message.delivery_status = status
    message.delivery_status_at = occurred_at or now
    if status == "failed":
        message.error = _error(errors) or {"code": None, "title": "failed", "message": None, "details": None}
    session.add(message)
    conversation = session.get(Conversation, message.conversation_id)
    assert conversation is not None
    if status == "failed" and message.error and message.error.get("code") in WINDOW_CLOSED_CODES:
        conversation.window_closed_at = occurred_at or now
        session.add(conversation)
        conversation_rows.emit(session, "conversation.updated", conversation)
    session.flush()
    events.emit(
        session,
        "message.status_updated",
        present.message(session, message),
        to=conversation_rows.audience(conversation),
    )
    return True


def apply_pending(session: Session, message: Message, now: datetime) -> int:
    """Statuses that arrived before this message's id was known, applied in arrival order."""
    if not message.channel_message_id:
        return 0
    waiting = list(
        session.exec(
            select(PendingStatus)
            .where(
                PendingStatus.channel == message.channel,
                PendingStatus.channel_message_id == message.channel_message_id,
            )
            .order_by(PendingStatus.id)  # type: ignore[arg-type]
        )
    )
    applied = 0
    for pending in waiting:
        errors = pending.payload.get("errors") or []
        if _apply_to(session, message, pending.status, pending.occurred_at, errors, now):
            applied += 1
    if waiting:
        session.exec(delete(PendingStatus).where(PendingStatus.id.in_([p.id for p in waiting])))  # type: ignore[union-attr]
    return applied
