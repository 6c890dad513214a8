"""Delivery statuses of outbound messages: forward only, failures kept with Meta's reason.

``sent < delivered < read < played``; ``failed`` replaces anything short of delivered. A status
for a message id we do not know yet waits in ``pending_statuses`` and is applied when the send
records the id. A message whose send was lost mid-call (``unknown``, or still ``sending``) has no
id yet: Meta echoes the ``biz_opaque_callback_data`` we sent (``max:<message id>``) in every
status, and that names the message, so it learns its id and the truth from the first status.
A status value MAX does not know (``deleted``, ``warning``, ...) is kept as an inbound event with
its raw payload and changes nothing.

The status webhook and the send job's answer may race: both serialize on the message id
(:func:`lock_channel_id`, an advisory lock on PostgreSQL; SQLite has one writer), so a status is
either applied directly or left pending where the send will find it, never orphaned.
"""

from __future__ import annotations

import re
import zlib
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, col, delete, select

from max_server.db import is_postgres
from max_server.models import Conversation, InboundEvent, Message, PendingStatus
from max_server.services import conversation_rows, events, present

RANK = {"pending": 0, "sending": 1, "unknown": 1, "sent": 2, "delivered": 3, "read": 4, "played": 5}
META_STATUSES = frozenset({"sent", "delivered", "read", "played", "failed"})
WINDOW_CLOSED_CODES = {131047}
CALLBACK_PREFIX = "max:"
_CALLBACK = re.compile(r"^max:(\d{1,18})$")
# A message whose send may have reached Meta without us learning its id.
ADOPTABLE = ("sending", "unknown")


def callback_data(message_id: int) -> str:
    """What outbound sends carry as ``biz_opaque_callback_data`` (Meta echoes it in statuses)."""
    return f"{CALLBACK_PREFIX}{message_id}"


def message_id_in(data: str | None) -> int | None:
    """The message id named by echoed callback data, or None when it is not ours."""
    found = _CALLBACK.match(data or "")
    return int(found.group(1)) if found else None


def lock_channel_id(session: Session, channel: str, channel_message_id: str) -> None:
    """Serializes everything that looks a channel message id up or records it (PostgreSQL;
    SQLite's single writer already does). Taken before any message row lock, in every caller."""
    if is_postgres(session):
        key = zlib.crc32(f"max:wamid:{channel}:{channel_message_id}".encode())
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


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
    callback: str | None = None,
) -> str:
    """Applies a status. Returns "applied", "ignored" (not forward), "pending" (unknown id) or
    "kept_unknown" (a status value MAX does not know, stored as it came)."""
    lock_channel_id(session, channel, channel_message_id)
    message = session.exec(
        select(Message).where(
            Message.channel == channel,
            Message.channel_message_id == channel_message_id,
            Message.direction == "outbound",
        )
    ).first()
    if status not in META_STATUSES:
        session.add(
            InboundEvent(
                channel=channel,
                kind=f"status:{status}"[:64],
                payload={
                    "channel_message_id": channel_message_id,
                    "message_id": message.id if message is not None else None,
                    "status": status,
                    "raw": raw,
                },
            )
        )
        return "kept_unknown"
    if message is None:
        message = _adopt(session, channel, channel_message_id, callback, now)
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


def _adopt(
    session: Session, channel: str, channel_message_id: str, callback: str | None, now: datetime
) -> Message | None:
    """The message our callback data names, when it is still waiting to learn its id: it takes
    ``channel_message_id`` (and any statuses already waiting for it)."""
    message_id = message_id_in(callback)
    if message_id is None:
        return None
    query = select(Message).where(
        Message.id == message_id,
        Message.channel == channel,
        Message.direction == "outbound",
        col(Message.channel_message_id).is_(None),
        col(Message.delivery_status).in_(ADOPTABLE),
    )
    if is_postgres(session):
        query = query.with_for_update()
    message = session.exec(query).first()
    if message is None:
        return None
    message.channel_message_id = channel_message_id
    session.add(message)
    session.flush()
    apply_pending(session, message, now)
    return message


def _apply_to(
    session: Session,
    message: Message,
    status: str,
    occurred_at: datetime | None,
    errors: list[dict[str, Any]],
    now: datetime,
) -> bool:
    previous = message.delivery_status
    if not moves_forward(previous, status):
        return False
    message.delivery_status = status
    message.delivery_status_at = occurred_at or now
    if status == "failed":
        message.error = _error(errors) or {"code": None, "title": "failed", "message": None, "details": None}
    elif previous == "unknown":
        message.error = None  # "delivery unknown" was our doubt, and Meta has settled it
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
        present.message_event(session, message, conversation),
        to=conversation_rows.audience(conversation),
    )
    return True


def apply_pending(session: Session, message: Message, now: datetime) -> int:
    """Statuses that arrived before this message's id was known, applied in arrival order. The
    caller holds :func:`lock_channel_id` for the id, so none can slip in unseen meanwhile."""
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


def prune_pending(session: Session, before: datetime, batch: int = 1000) -> int:
    """Deletes up to ``batch`` pending statuses that arrived before ``before`` (their message
    never learned its id: a send from another system, or one lost for good). The caller commits."""
    doomed = list(
        session.exec(select(PendingStatus.id).where(col(PendingStatus.created_at) < before).limit(batch))
    )
    if doomed:
        session.exec(delete(PendingStatus).where(col(PendingStatus.id).in_(doomed)))
    return len(doomed)
