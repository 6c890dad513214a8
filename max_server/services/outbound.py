"""The life of an outbound message while a channel sends it, shared by every channel's job.

A send is ``pending`` → ``sending`` (committed before the network call) → ``sent`` with the
channel's id, or ``failed`` with the reason. A job that finds its message still ``sending``
knows an earlier attempt died mid-call: it marks the message ``unknown`` for the agent to check
and resend, and never sends it blindly a second time (unless the channel dedupes resends, as the
Chat App's idempotency key does). An ``unknown`` WhatsApp message still learns the truth: see
``statuses`` (Meta echoes our callback data).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, select

from max_server import clock
from max_server.db import Database, is_postgres
from max_server.models import ChannelAccount, Conversation, CustomerIdentity, Message
from max_server.services import conversation_rows, events, present, statuses


@dataclass
class Outgoing:
    message: Message
    conversation: Conversation
    account: ChannelAccount
    identity: CustomerIdentity | None


def _lock(session: Session, message_id: int) -> Message | None:
    query = select(Message).where(Message.id == message_id)
    if is_postgres(session):
        query = query.with_for_update()
    return session.exec(query).first()


def begin(db: Database, message_id: int, *, resend_in_flight: bool = False) -> Outgoing | None:
    """Marks the message ``sending`` and returns what the send needs; None when there is nothing
    to send (already sent, failed, or found ``sending``, which becomes ``unknown``).

    ``resend_in_flight`` is for channels whose receiver dedupes a resend (the Chat App's
    ``Idempotency-Key``): a message found ``sending`` is simply sent again."""
    with db.session() as session:
        message = _lock(session, message_id)
        if message is None or message.delivery_status not in ("pending", "sending"):
            return None
        if message.delivery_status == "sending" and not resend_in_flight:
            _set(
                session,
                message,
                "unknown",
                error={
                    "code": None,
                    "title": "delivery unknown",
                    "message": "the server stopped while sending; check with the customer before resending",
                    "details": None,
                },
            )
            session.commit()
            return None
        conversation = session.get(Conversation, message.conversation_id)
        assert conversation is not None
        account = session.get(ChannelAccount, conversation.channel_account_id)
        assert account is not None
        identity = (
            session.get(CustomerIdentity, conversation.identity_id) if conversation.identity_id else None
        )
        if identity is None:
            identity = session.exec(
                select(CustomerIdentity).where(
                    CustomerIdentity.customer_id == conversation.customer_id,
                    CustomerIdentity.channel == account.kind,
                )
            ).first()
        message.delivery_status = "sending"
        message.delivery_status_at = clock.now()
        session.add(message)
        session.commit()
        return Outgoing(message, conversation, account, identity)


def back_to_pending(db: Database, message_id: int) -> None:
    """The call certainly did not reach the channel: the next attempt may send again."""
    with db.session() as session:
        message = _lock(session, message_id)
        if message is not None and message.delivery_status == "sending":
            message.delivery_status = "pending"
            session.add(message)
            session.commit()


def sent(db: Database, message_id: int, channel_message_id: str | None) -> None:
    with db.session() as session:
        record_sent(session, message_id, channel_message_id)
        session.commit()


def record_sent(session: Session, message_id: int, channel_message_id: str | None) -> None:
    """The channel accepted the message: keep its id and apply the statuses that beat the answer.
    The id's lock comes first (as in ``statuses.apply``), so a status webhook committing at the
    same moment is either seen here as pending or sees the id itself. The caller commits."""
    channel = session.exec(select(Message.channel).where(Message.id == message_id)).first()
    if channel is None:
        return
    if channel_message_id:
        statuses.lock_channel_id(session, channel, channel_message_id)
    message = _lock(session, message_id)
    if message is None:
        return
    message.channel_message_id = channel_message_id
    if message.delivery_status in ("sending", "pending", "unknown"):
        _set(session, message, "sent")
    statuses.apply_pending(session, message, clock.now())


def failed(db: Database, message_id: int, error: dict[str, Any], *, window_closed: bool = False) -> None:
    with db.session() as session:
        message = _lock(session, message_id)
        if message is None:
            return
        _set(session, message, "failed", error=error, window_closed=window_closed)
        session.commit()


def unknown(db: Database, message_id: int, reason: str) -> None:
    with db.session() as session:
        message = _lock(session, message_id)
        if message is None or message.delivery_status != "sending":
            return
        _set(
            session,
            message,
            "unknown",
            error={"code": None, "title": "delivery unknown", "message": reason, "details": None},
        )
        session.commit()


def _set(
    session: Session,
    message: Message,
    status: str,
    *,
    error: dict[str, Any] | None = None,
    window_closed: bool = False,
) -> None:
    now = clock.now()
    message.delivery_status = status
    message.delivery_status_at = now
    if error is not None:
        message.error = error
    session.add(message)
    conversation = session.get(Conversation, message.conversation_id)
    assert conversation is not None
    if window_closed:
        conversation.window_closed_at = now
        session.add(conversation)
        conversation_rows.emit(session, "conversation.updated", conversation)
    session.flush()
    events.emit(
        session,
        "message.status_updated",
        present.message_event(session, message, conversation),
        to=conversation_rows.audience(conversation),
    )
