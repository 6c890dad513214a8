"""Reading conversations and their messages, as the reader may see them."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import ColumnElement, or_
from sqlmodel import Session, col, select

from max_server.access import Actor, can_see, visible_filter
from max_server.errors import not_found
from max_server.models import ChannelAccount, Conversation, Message
from max_server.services import conversation_search
from max_server.services.pagination import clamp_limit

StatusFilter = Literal["open", "queued", "assigned", "closed", "all"]
_STATUSES: dict[str, tuple[str, ...]] = {
    "open": ("queued", "assigned"),
    "queued": ("queued",),
    "assigned": ("assigned",),
    "closed": ("closed",),
    "all": (),
}


def list_conversations(
    session: Session,
    actor: Actor,
    *,
    status: StatusFilter = "open",
    team_id: int | None = None,
    assignee_id: int | None = None,
    unassigned: bool = False,
    channel: str | None = None,
    customer_id: int | None = None,
    search: str | None = None,
    before_id: int | None = None,
    limit: int | None = None,
) -> tuple[list[Conversation], int | None]:
    """Newest first; returns the page and the id to continue before (or None). ``search``: see
    ``conversation_search``."""
    size = clamp_limit(limit)
    query = select(Conversation).where(visible_filter(actor, Conversation.team_id, Conversation.assignee_id))
    if not actor.is_admin:
        query = query.where(held_listed_filter(actor))
    if _STATUSES[status]:
        query = query.where(col(Conversation.status).in_(_STATUSES[status]))
    if team_id is not None:
        query = query.where(Conversation.team_id == team_id)
    if assignee_id is not None:
        query = query.where(Conversation.assignee_id == assignee_id)
    if unassigned:
        query = query.where(col(Conversation.assignee_id).is_(None))
    if customer_id is not None:
        query = query.where(Conversation.customer_id == customer_id)
    if channel is not None:
        query = query.join(ChannelAccount, col(ChannelAccount.id) == Conversation.channel_account_id).where(
            ChannelAccount.kind == channel
        )
    if search and search.strip():
        query = query.where(conversation_search.matching(search.strip()))
    if before_id is not None:
        query = query.where(col(Conversation.id) < before_id)
    rows = list(session.exec(query.order_by(col(Conversation.id).desc()).limit(size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    return rows, (rows[-1].id if more and rows else None)


def held_listed_filter(actor: Actor) -> ColumnElement[bool]:
    """A conversation held by the customer rate limit is not work for agents: lists show it only
    to its team's supervisors (and admins), as its events go only to them, and to whoever a
    supervisor gave it to."""
    supervised = sorted(team_id for team_id, role in actor.teams.items() if role == "supervisor")
    return or_(
        col(Conversation.rate_limited).is_(False),
        col(Conversation.team_id).in_(supervised),
        col(Conversation.assignee_id) == actor.user_id,
    )


def get_visible(session: Session, actor: Actor, conversation_id: int, *, lock: bool = False) -> Conversation:
    """The conversation, or 404 when it does not exist *or* the actor may not see it."""
    query = select(Conversation).where(Conversation.id == conversation_id)
    if lock:
        query = query.with_for_update()
    row = session.exec(query).first()
    if row is None or not can_see(actor, row.team_id, row.assignee_id):
        raise not_found("conversation", conversation_id)
    return row


def list_messages(
    session: Session,
    actor: Actor,
    conversation_id: int,
    *,
    after_id: int | None = None,
    limit: int | None = None,
) -> tuple[list[Message], int | None]:
    """Oldest first (thread order); continues after the last id of the page."""
    get_visible(session, actor, conversation_id)
    size = clamp_limit(limit)
    query = select(Message).where(Message.conversation_id == conversation_id)
    if after_id is not None:
        query = query.where(col(Message.id) > after_id)
    rows = list(session.exec(query.order_by(col(Message.id)).limit(size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    return rows, (rows[-1].id if more and rows else None)
