"""Agents' replies: stored first, then sent by a job, in order per conversation."""

from __future__ import annotations

from sqlmodel import Session

from max_server import clock
from max_server.access import Actor
from max_server.errors import Conflict, Forbidden, Unprocessable
from max_server.jobs import queue
from max_server.models import ChannelAccount, Conversation, Message
from max_server.services import audit, conversation_rows, events, present
from max_server.services.conversations import get_visible
from max_server.services.inbound import preview

MAX_TEXT = 4096  # WhatsApp's limit for a text message body


def send_job_kind(channel: str) -> str:
    return f"{channel}.send"


def ordering_key(conversation: Conversation) -> str:
    return f"conversation:{conversation.id}"


def check_can_reply(actor: Actor, conversation: Conversation) -> None:
    if conversation.status == "closed":
        raise Conflict("the conversation is closed; reopen it to reply", code="conversation_closed")
    mine = conversation.assignee_id == actor.user_id
    if not (mine or actor.belongs_to(conversation.team_id) or actor.supervises(conversation.team_id)):
        raise Forbidden("only its assignee or members of its team may reply", code="not_allowed")


def reply_text(session: Session, actor: Actor, conversation_id: int, text: str) -> Message:
    """Stores an agent's text reply and queues its send. Refused outside WhatsApp's window."""
    body = text.strip()
    if not body:
        raise Unprocessable("the reply is empty", code="empty_message")
    if len(body) > MAX_TEXT:
        raise Unprocessable(f"a message may have at most {MAX_TEXT} characters", code="message_too_long")
    conversation = get_visible(session, actor, conversation_id, lock=True)
    check_can_reply(actor, conversation)
    account = session.get(ChannelAccount, conversation.channel_account_id)
    assert account is not None
    now = clock.now()
    if not present.window_open(account.kind, conversation, now):
        raise Conflict(
            "more than 24 hours have passed since the customer's last message: send an approved template",
            code="whatsapp_window_closed",
            details={"window_expires_at": present.window_expires_at(account.kind, conversation)},
        )
    return queue_outbound(session, actor, conversation, account, text=body, type_="text", payload={})


def queue_outbound(
    session: Session,
    actor: Actor,
    conversation: Conversation,
    account: ChannelAccount,
    *,
    text: str,
    type_: str,
    payload: dict[str, object],
    sender_type: str = "agent",
) -> Message:
    """Stores an outbound agent message, updates the conversation, queues the send; commits.
    ``sender_type="system"`` (automatic replies) neither counts as a first response nor assigns."""
    now = clock.now()
    human = sender_type == "agent" and actor.user_id is not None
    message = Message(
        conversation_id=conversation.id,  # type: ignore[arg-type]
        direction="outbound",
        sender_type=sender_type,
        sender_user_id=actor.user_id,
        channel=account.kind,
        type=type_,
        content_text=text,
        payload=payload,
        delivery_status="pending",
        received_at=now,
        created_at=now,
    )
    session.add(message)
    session.flush()
    assigned = False
    fields: set[str] = set()
    if conversation.first_response_at is None and human:
        conversation.first_response_at = now  # the first human reply of this cycle
        fields.add("first_response_at")
    if conversation.assignee_id is None and human:
        conversation.assignee_id = actor.user_id  # replying to a queued conversation takes it
        conversation.status = "assigned"
        conversation.assigned_at = now
        assigned = True
        fields |= {"assignee_id", "status"}
    conversation.last_message_at = now
    conversation.last_message_preview = preview(text, type_)
    conversation.updated_at = now
    session.add(conversation)
    conversation_rows.changed(session, conversation, fields, now)
    queue.enqueue(
        session,
        send_job_kind(account.kind),
        {"message_id": message.id},
        ordering_key=ordering_key(conversation),
    )
    if assigned:
        conversation_rows.emit(session, "conversation.assigned", conversation)
        audit.record(
            session,
            actor,
            "conversation.assigned",
            "conversation",
            conversation.id,
            {"from": None, "to": actor.user_id, "by": "reply"},
        )
    events.emit(
        session,
        "message.created",
        present.message_event(session, message, conversation),
        to=conversation_rows.audience(conversation),
    )
    session.commit()
    return message
