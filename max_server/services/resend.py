"""Resending an agent's message whose delivery ``failed`` or is ``unknown`` (DESIGN §6: a worker
lost mid-call leaves it ``unknown``, "shown to the agent, who can resend").

A resend is a NEW message with the same content, sent through the ordinary reply path (text
replies keep WhatsApp's 24 h window; templates are checked again: still approved, same
parameters), so the thread stays honest: the original keeps its state and error and gains the
``resent`` flag, once. Both changes commit together or not at all, and a second resend of the
same message is refused, so a double key press never sends twice.
"""

from __future__ import annotations

from sqlmodel import Session

from max_server.access import Actor
from max_server.errors import Conflict, not_found
from max_server.models import Message
from max_server.services import conversation_rows, events, present, replies, templates
from max_server.services.conversations import get_visible

RESENDABLE = ("failed", "unknown")
RESENT = "resent"
TEMPLATE_FIELDS = ("name", "language", "parameters", "header_parameters")


def resend(session: Session, actor: Actor, conversation_id: int, message_id: int) -> Message:
    """Queues a copy of message ``message_id`` of the conversation; returns the new message."""
    # The conversation's row lock serializes resends of its messages (SQLite: one writer).
    conversation = get_visible(session, actor, conversation_id, lock=True)
    original = session.get(Message, message_id)
    if original is None or original.conversation_id != conversation.id:
        raise not_found("message", message_id)
    if original.direction != "outbound" or original.sender_type != "agent":
        raise Conflict("only agents' messages can be resent", code="not_resendable")
    if original.delivery_status not in RESENDABLE:
        raise Conflict(
            f"the message is {original.delivery_status}: only failed or unknown messages are resent",
            code="not_resendable",
            details={"delivery_status": original.delivery_status},
        )
    if RESENT in original.flags:
        raise Conflict("this message was resent already", code="already_resent")
    if original.type not in ("text", "template"):
        raise Conflict(f"a {original.type} message cannot be resent", code="not_resendable")
    original.flags = [*original.flags, RESENT]
    session.add(original)
    session.flush()
    # Everyone who sees the thread learns that the original was resent (in this transaction).
    events.emit(
        session,
        "message.status_updated",
        present.message(session, original),
        to=conversation_rows.audience(conversation),
    )
    # The reply path checks who may reply and the window, stores the copy, queues its send and
    # commits everything above with it; a refusal there rolls all of it back.
    assert conversation.id is not None
    if original.type == "template":
        sent = original.payload.get("template")
        spec = {k: sent[k] for k in TEMPLATE_FIELDS if k in sent} if isinstance(sent, dict) else {}
        return templates.send(session, actor, conversation.id, spec)
    return replies.reply_text(session, actor, conversation.id, original.content_text or "")
