"""What agents and supervisors do to a conversation. Each action is one transaction with its
event and audit entry.

Who may do what (DESIGN §5): anyone who sees a conversation may take it when it is unassigned,
change its priority, and reopen it; its assignee may also hand it back, transfer and close it;
the team's supervisors and admins may do all of that for others.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from max_server import clock
from max_server.access import Actor, can_act_for_others
from max_server.errors import Conflict, Forbidden, Unprocessable, not_found
from max_server.models import Conversation, TeamMember, User
from max_server.services import audit, conversation_rows
from max_server.services.conversations import get_visible
from max_server.services.teams import find_team

CLOSE_REASONS = ("resolved", "spam", "duplicate", "no_response", "other")
PRIORITIES = ("low", "normal", "high", "urgent")


def _load(session: Session, actor: Actor, conversation_id: int) -> Conversation:
    return get_visible(session, actor, conversation_id, lock=True)


def _require_owner_or_supervisor(actor: Actor, conversation: Conversation, what: str) -> None:
    if conversation.assignee_id == actor.user_id and actor.user_id is not None:
        return
    if not can_act_for_others(actor, conversation.team_id):
        raise Forbidden(f"only the assignee or a supervisor of the team may {what}", code="not_allowed")


def _finish(
    session: Session,
    actor: Actor,
    conversation: Conversation,
    event: str,
    action: str,
    data: dict[str, Any],
    fields: set[str],
    extra_teams: tuple[int | None, ...] = (),
    extra_users: tuple[int | None, ...] = (),
) -> Conversation:
    now = clock.now()
    conversation.updated_at = now
    session.add(conversation)
    conversation_rows.changed(session, conversation, fields, now)
    # Whoever just lost the conversation (old team, old assignee) hears about it too.
    conversation_rows.emit(session, event, conversation, extra_teams, extra_users)
    audit.record(session, actor, action, "conversation", conversation.id, data)
    session.commit()
    return conversation


def assign(session: Session, actor: Actor, conversation_id: int, user_id: int | None) -> Conversation:
    """Assigns to ``user_id`` (None: unassign). Taking an unassigned conversation needs only
    membership; anything else needs the assignee's own hand or a supervisor."""
    conversation = _load(session, actor, conversation_id)
    if conversation.status == "closed":
        raise Conflict("the conversation is closed; reopen it first", code="conversation_closed")
    previous = conversation.assignee_id
    if user_id == previous:
        return conversation
    taking_free_one = user_id == actor.user_id and previous is None
    giving_back_own = user_id is None and previous == actor.user_id
    if not (taking_free_one or giving_back_own) and not can_act_for_others(actor, conversation.team_id):
        raise Forbidden(
            "only a supervisor of the team may assign this conversation to someone else",
            code="not_allowed",
        )
    if taking_free_one and not (actor.is_admin or actor.belongs_to(conversation.team_id)):
        raise Forbidden("you are not a member of this conversation's team", code="not_team_member")
    if user_id is not None:
        user = session.get(User, user_id)
        if user is None or not user.is_active:
            raise not_found("user", user_id)
        if (
            conversation.team_id is not None
            and user.role != "admin"
            and not _is_member(session, conversation.team_id, user_id)
        ):
            raise Unprocessable(
                f"{user.name} is not a member of this conversation's team", code="not_team_member"
            )
    conversation.assignee_id = user_id
    conversation.status = "assigned" if user_id is not None else "queued"
    conversation.assigned_at = clock.now() if user_id is not None else None
    event = "conversation.assigned" if user_id is not None else "conversation.updated"
    return _finish(
        session,
        actor,
        conversation,
        event,
        "conversation.assigned",
        {"from": previous, "to": user_id},
        {"assignee_id", "status"},
        extra_users=(previous,),
    )


def _is_member(session: Session, team_id: int, user_id: int) -> bool:
    from sqlmodel import select

    return (
        session.exec(
            select(TeamMember.id).where(TeamMember.team_id == team_id, TeamMember.user_id == user_id)
        ).first()
        is not None
    )


def transfer(session: Session, actor: Actor, conversation_id: int, team_ref: str) -> Conversation:
    """Moves the conversation to another team's queue (unassigned)."""
    conversation = _load(session, actor, conversation_id)
    if conversation.status == "closed":
        raise Conflict("the conversation is closed; reopen it first", code="conversation_closed")
    _require_owner_or_supervisor(actor, conversation, "transfer it")
    team = find_team(session, team_ref)
    previous_team, previous_assignee = conversation.team_id, conversation.assignee_id
    if team.id == previous_team:
        return conversation
    conversation.team_id = team.id
    conversation.assignee_id = None
    conversation.assigned_at = None
    conversation.status = "queued"
    return _finish(
        session,
        actor,
        conversation,
        "conversation.transferred",
        "conversation.transferred",
        {"from_team": previous_team, "to_team": team.id, "previous_assignee": previous_assignee},
        {"team_id", "assignee_id", "status"},
        extra_teams=(previous_team,),
        extra_users=(previous_assignee,),
    )


def update(
    session: Session,
    actor: Actor,
    conversation_id: int,
    *,
    priority: str | None = None,
    subject: str | None = None,
) -> Conversation:
    conversation = _load(session, actor, conversation_id)
    changes: dict[str, Any] = {}
    if priority is not None and priority != conversation.priority:
        if priority not in PRIORITIES:
            raise Unprocessable(f"priority must be one of {', '.join(PRIORITIES)}", code="invalid_priority")
        changes["priority"] = {"from": conversation.priority, "to": priority}
        conversation.priority = priority
    if subject is not None and subject != conversation.subject:
        changes["subject"] = {"from": conversation.subject, "to": subject}
        conversation.subject = subject or None
    if not changes:
        return conversation
    return _finish(
        session, actor, conversation, "conversation.updated", "conversation.updated", changes, set(changes)
    )


def close(session: Session, actor: Actor, conversation_id: int, reason: str) -> Conversation:
    if reason not in CLOSE_REASONS:
        raise Unprocessable(f"reason must be one of {', '.join(CLOSE_REASONS)}", code="invalid_close_reason")
    conversation = _load(session, actor, conversation_id)
    if conversation.status == "closed":
        raise Conflict("the conversation is already closed", code="conversation_closed")
    _require_owner_or_supervisor(actor, conversation, "close it")
    conversation.status = "closed"
    conversation.closed_at = clock.now()
    conversation.close_reason = reason
    conversation.sla_next_check_at = None
    return _finish(
        session,
        actor,
        conversation,
        "conversation.closed",
        "conversation.closed",
        {"reason": reason},
        {"status", "closed_at"},
    )


def reopen(session: Session, actor: Actor, conversation_id: int) -> Conversation:
    conversation = _load(session, actor, conversation_id)
    if conversation.status != "closed":
        raise Conflict("the conversation is not closed", code="conversation_open")
    now = clock.now()
    if not conversation_rows.reopen(session, conversation, now, now):
        raise Conflict(
            "this customer has another open conversation on this channel; continue there",
            code="another_conversation_open",
        )
    return _finish(
        session,
        actor,
        conversation,
        "conversation.reopened",
        "conversation.reopened",
        {"cycle": conversation.cycle},
        {"status", "cycle", "closed_at"},
    )
