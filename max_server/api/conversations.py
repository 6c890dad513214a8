"""Conversations and their messages, as the caller may see them."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from max_server.api.deps import AgentActor, SessionDep
from max_server.schemas import ConversationList, ConversationPublic, MessageList
from max_server.services import conversations, present
from max_server.services.pagination import cursor_int, encode_cursor
from max_server.services.teams import find_team

router = APIRouter(prefix="/api/v1/conversations", tags=["conversations"])

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
    cursor: str | None = None,
    limit: Limit = 50,
) -> ConversationList:
    """Newest first. ``status=open`` (default) means queued or assigned."""
    team_id = find_team(session, team).id if team else None
    assignee_id = (
        actor.user_id if assignee == "me" else (int(assignee) if assignee and assignee.isdigit() else None)
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
