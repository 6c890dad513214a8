"""Conversations and their messages, as the caller may see them."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, status

from max_server.api.deps import AgentActor, SessionDep
from max_server.errors import Unprocessable
from max_server.models import Message
from max_server.schemas import (
    AssignBody,
    CloseBody,
    ConversationList,
    ConversationPublic,
    ConversationUpdate,
    MessageList,
    MessagePublic,
    ReplyCreate,
    TransferBody,
)
from max_server.schemas.customers import NUL_FREE
from max_server.services import (
    conversation_actions,
    conversation_search,
    conversations,
    present,
    replies,
    resend,
)
from max_server.services import templates as template_service
from max_server.services.pagination import cursor_int, encode_cursor
from max_server.services.teams import find_team

router = APIRouter(prefix="/api/v1/conversations", tags=["conversations"])


def templates_send(
    session: SessionDep, actor: AgentActor, conversation_id: int, template: dict[str, object]
) -> Message:
    """An approved WhatsApp template (allowed outside the 24 h window); see ``services.templates``."""
    return template_service.send(session, actor, conversation_id, dict(template))


Limit = Annotated[int, Query(ge=1, le=500)]


@router.get("", response_model=ConversationList)
def list_conversations(
    session: SessionDep,
    actor: AgentActor,
    status: Literal["open", "queued", "assigned", "closed", "all"] = "open",
    team: str | None = None,
    assignee: Annotated[str | None, Query(description="a user id, `me`, or `none`")] = None,
    channel: Literal["whatsapp", "chat_app"] | None = None,
    customer_id: int | None = None,
    q: Annotated[
        str | None,
        Query(
            max_length=conversation_search.MAX_QUERY,
            pattern=NUL_FREE,
            description="search: customer name, email, phone or WhatsApp number, `#number`, "
            "subject, or text of a recent message (case-insensitive)",
        ),
    ] = None,
    cursor: str | None = None,
    limit: Limit = 50,
) -> ConversationList:
    """Newest first. ``status=open`` (default) means queued or assigned; ``q`` searches."""
    team_id = find_team(session, team).id if team else None
    by_id = assignee is not None and assignee.isascii() and assignee.isdecimal()
    if assignee not in (None, "me", "none") and not by_id:
        raise Unprocessable("assignee must be a user's id, `me` or `none`", code="invalid_assignee")
    assignee_id = (
        actor.user_id if assignee == "me" else (int(assignee) if assignee and assignee.isdecimal() else None)
    )
    rows, next_id = conversations.list_conversations(
        session,
        actor,
        status=status,
        team_id=team_id,
        assignee_id=assignee_id,
        unassigned=assignee == "none",
        channel=channel,
        customer_id=customer_id,
        search=q,
        before_id=cursor_int(cursor),
        limit=limit,
    )
    return ConversationList(
        conversations=present.conversations(session, rows),
        next_cursor=encode_cursor(id=next_id) if next_id else None,
    )


@router.get("/{conversation_id}", response_model=ConversationPublic)
def read_conversation(session: SessionDep, actor: AgentActor, conversation_id: int) -> ConversationPublic:
    return present.conversation(session, conversations.get_visible(session, actor, conversation_id))


@router.get("/{conversation_id}/messages", response_model=MessageList)
def list_messages(
    session: SessionDep,
    actor: AgentActor,
    conversation_id: int,
    cursor: str | None = None,
    limit: Limit = 50,
) -> MessageList:
    """Oldest first; follow ``next_cursor`` for later messages."""
    rows, next_id = conversations.list_messages(
        session, actor, conversation_id, after_id=cursor_int(cursor), limit=limit
    )
    return MessageList(
        messages=present.messages(session, rows),
        next_cursor=encode_cursor(id=next_id) if next_id else None,
    )


@router.post("/{conversation_id}/messages", response_model=MessagePublic, status_code=status.HTTP_201_CREATED)
def reply(session: SessionDep, actor: AgentActor, conversation_id: int, body: ReplyCreate) -> MessagePublic:
    """Sends an agent's message. Free text is refused with 409 ``whatsapp_window_closed`` more
    than 24 hours after the customer's last message: send an approved template instead."""
    if body.template is not None:
        message = templates_send(session, actor, conversation_id, body.template)
    elif body.text is not None:
        message = replies.reply_text(session, actor, conversation_id, body.text)
    else:
        raise Unprocessable("give `text` or `template`", code="empty_message")
    return present.message(session, message)


@router.post(
    "/{conversation_id}/messages/{message_id}/resend",
    response_model=MessagePublic,
    status_code=status.HTTP_201_CREATED,
)
def resend_message(
    session: SessionDep, actor: AgentActor, conversation_id: int, message_id: int
) -> MessagePublic:
    """Sends again an agent's message left ``failed`` or ``unknown``: a new message with the same
    content (the original stays, flagged ``resent``; 409 ``already_resent`` the second time).
    The reply rules apply: 409 ``whatsapp_window_closed`` for text outside the 24 h window."""
    return present.message(session, resend.resend(session, actor, conversation_id, message_id))


@router.post("/{conversation_id}/assign", response_model=ConversationPublic)
def assign(
    session: SessionDep, actor: AgentActor, conversation_id: int, body: AssignBody
) -> ConversationPublic:
    """Assigns to a user (`me` for yourself) or, with null, unassigns."""
    if body.user_id not in (None, "", "me") and not (body.user_id.isascii() and body.user_id.isdigit()):
        raise Unprocessable("user_id must be a user's id, `me`, or null", code="invalid_user_id")
    user_id = actor.user_id if body.user_id == "me" else (int(body.user_id) if body.user_id else None)
    return present.conversation(
        session, conversation_actions.assign(session, actor, conversation_id, user_id)
    )


@router.post("/{conversation_id}/transfer", response_model=ConversationPublic)
def transfer(
    session: SessionDep, actor: AgentActor, conversation_id: int, body: TransferBody
) -> ConversationPublic:
    """Moves it to another team's queue, unassigned."""
    return present.conversation(
        session, conversation_actions.transfer(session, actor, conversation_id, body.team)
    )


@router.patch("/{conversation_id}", response_model=ConversationPublic)
def update(
    session: SessionDep, actor: AgentActor, conversation_id: int, body: ConversationUpdate
) -> ConversationPublic:
    """Changes priority or subject."""
    row = conversation_actions.update(
        session, actor, conversation_id, priority=body.priority, subject=body.subject
    )
    return present.conversation(session, row)


@router.post("/{conversation_id}/close", response_model=ConversationPublic)
def close(
    session: SessionDep, actor: AgentActor, conversation_id: int, body: CloseBody
) -> ConversationPublic:
    return present.conversation(
        session, conversation_actions.close(session, actor, conversation_id, body.reason)
    )


@router.post("/{conversation_id}/reopen", response_model=ConversationPublic)
def reopen(session: SessionDep, actor: AgentActor, conversation_id: int) -> ConversationPublic:
    return present.conversation(session, conversation_actions.reopen(session, actor, conversation_id))
