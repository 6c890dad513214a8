"""Triage and automatic assignment, serialized per team so counting load and assigning can
never overbook an agent (an advisory lock on PostgreSQL; SQLite has one writer)."""

from __future__ import annotations

import zlib
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, text
from sqlmodel import Session, col, select

from max_server.db import is_postgres
from max_server.domain import routing as rules
from max_server.domain.routing import Candidate, Choice
from max_server.models import (
    AgentSkill,
    ChannelAccount,
    Conversation,
    RoutingDecision,
    RoutingRule,
    Team,
    TeamMember,
    User,
)
from max_server.services import conversation_rows

PRIORITY_RANK = {"urgent": 0, "high": 1, "normal": 2, "low": 3}
BATCH = 200


def active_rules(session: Session) -> list[RoutingRule]:
    return list(
        session.exec(
            select(RoutingRule)
            .where(col(RoutingRule.is_active).is_(True))
            .order_by(col(RoutingRule.position))
        )
    )


def first_match(rows: list[RoutingRule], text_: str | None, account_id: int | None) -> RoutingRule | None:
    for rule in rows:
        if rule.channel_account_id is not None and rule.channel_account_id != account_id:
            continue
        if rules.matches(rule.match_type, rule.pattern, text_):
            return rule
    return None


def triage(
    session: Session, conversation: Conversation, first_text: str | None, now: datetime
) -> RoutingRule | None:
    """Applies the first matching rule (team, priority, skills) to a new conversation."""
    rule = first_match(active_rules(session), first_text, conversation.channel_account_id)
    changed: set[str] = set()
    if rule is not None:
        if rule.set_team_id is not None and rule.set_team_id != conversation.team_id:
            conversation.team_id = rule.set_team_id
            changed.add("team_id")
        if rule.set_priority and rule.set_priority != conversation.priority:
            conversation.priority = rule.set_priority
            changed.add("priority")
        if rule.required_skills:
            conversation.required_skills = list(rule.required_skills)
    if conversation.team_id is None:
        account = session.get(ChannelAccount, conversation.channel_account_id)
        if account is not None and account.default_team_id is not None:
            conversation.team_id = account.default_team_id
            changed.add("team_id")
    session.add(conversation)
    session.add(
        RoutingDecision(
            conversation_id=conversation.id,  # type: ignore[arg-type]
            strategy="triage",
            rule_id=rule.id if rule else None,
            team_id=conversation.team_id,
            reason=(
                f"rule {rule.position} {rule.name!r} matched"
                if rule
                else "no rule matched: the channel's default team"
            ),
            candidates=[],
            created_at=now,
        )
    )
    if changed:
        conversation_rows.changed(session, conversation, changed, now)
    return rule


def lock_team(session: Session, team_id: int) -> None:
    if is_postgres(session):
        key = zlib.crc32(f"max:team:{team_id}".encode())
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


def candidates(session: Session, team_id: int, with_skills: bool = True) -> list[Candidate]:
    """The team's online, active agents with their load, skills and last assignment (three
    column queries, no ORM objects: this runs for every assignment pass)."""
    members = session.execute(
        select(User.id, User.name, User.capacity)
        .join(TeamMember, col(TeamMember.user_id) == User.id)
        .where(TeamMember.team_id == team_id, col(User.is_active).is_(True), User.presence == "online")
        .order_by(col(User.id))
    ).all()
    if not members:
        return []
    in_team = select(TeamMember.user_id).where(TeamMember.team_id == team_id).scalar_subquery()
    usage = {
        row[0]: (int(row[1]), row[2])
        for row in session.execute(
            select(
                Conversation.assignee_id,
                func.count(case((col(Conversation.status) == "assigned", 1))),
                func.max(Conversation.assigned_at),
            )
            .where(col(Conversation.assignee_id).in_(in_team))
            .group_by(col(Conversation.assignee_id))
        ).all()
    }
    skills: dict[int, dict[str, int]] = defaultdict(dict)
    if with_skills:
        for user_id, skill, level in session.execute(
            select(AgentSkill.user_id, AgentSkill.skill, AgentSkill.proficiency).where(
                col(AgentSkill.user_id).in_(in_team)
            )
        ).all():
            skills[user_id][skill] = level
    return [
        Candidate(
            user_id=user_id,
            name=name,
            capacity=capacity,
            load=usage.get(user_id, (0, None))[0],
            skills=skills.get(user_id, {}),
            idle_since=usage.get(user_id, (0, None))[1],
        )
        for user_id, name, capacity in members
    ]


def queued(session: Session, team_id: int, limit: int = BATCH) -> list[Conversation]:
    """The team's queue: by priority, then age (held, rate-limited ones wait for a supervisor)."""
    rank = case(PRIORITY_RANK, value=Conversation.priority, else_=9)
    return list(
        session.exec(
            select(Conversation)
            .where(
                Conversation.team_id == team_id,
                Conversation.status == "queued",
                col(Conversation.rate_limited).is_(False),
            )
            .order_by(rank, col(Conversation.queued_at).asc().nulls_first(), col(Conversation.id))
            .limit(limit)
        )
    )


def assign_queue(session: Session, team_id: int, now: datetime, relax_after: int) -> int:
    """Assigns what the team's online agents have room for; returns how many. Caller commits."""
    lock_team(session, team_id)
    team = session.get(Team, team_id)
    if team is None or not team.auto_assign:
        return 0
    waiting = queued(session, team_id)
    if not waiting:
        return 0
    pool = candidates(session, team_id, with_skills=any(c.required_skills for c in waiting))
    if not pool:
        return 0
    by_id = {c.user_id: c for c in pool}
    assigned = 0
    for conversation in waiting:
        if not any(c.has_room for c in pool):
            break
        waited = now - (conversation.queued_at or conversation.created_at)
        choice = rules.choose(
            pool, list(conversation.required_skills or []), may_relax=waited >= timedelta(seconds=relax_after)
        )
        if choice.winner is None:
            continue
        _assign(session, conversation, choice, now)
        by_id[choice.winner.user_id].load += 1
        by_id[choice.winner.user_id].idle_since = now
        assigned += 1
    return assigned


def _assign(session: Session, conversation: Conversation, choice: Choice, now: datetime) -> None:
    assert choice.winner is not None
    conversation.assignee_id = choice.winner.user_id
    conversation.status = "assigned"
    conversation.assigned_at = now
    conversation.updated_at = now
    session.add(conversation)
    record(session, conversation, choice, now)
    conversation_rows.changed(session, conversation, {"assignee_id", "status"}, now)
    conversation_rows.emit(session, "conversation.assigned", conversation)


def record(session: Session, conversation: Conversation, choice: Choice, now: datetime) -> RoutingDecision:
    decision = RoutingDecision(
        conversation_id=conversation.id,  # type: ignore[arg-type]
        strategy=choice.strategy,
        team_id=conversation.team_id,
        winner_id=choice.winner.user_id if choice.winner else None,
        candidates=choice.scored,
        reason=choice.reason,
        created_at=now,
    )
    session.add(decision)
    return decision


def teams_with_queue(session: Session) -> list[int]:
    return [
        t
        for t in session.exec(
            select(Conversation.team_id)
            .where(
                Conversation.status == "queued",
                col(Conversation.team_id).is_not(None),
                col(Conversation.rate_limited).is_(False),
            )
            .distinct()
        )
        if t is not None
    ]


def teams_of(session: Session, user_id: int) -> list[int]:
    return list(session.exec(select(TeamMember.team_id).where(TeamMember.user_id == user_id)))


def decisions(session: Session, conversation_id: int) -> list[RoutingDecision]:
    return list(
        session.exec(
            select(RoutingDecision)
            .where(RoutingDecision.conversation_id == conversation_id)
            .order_by(col(RoutingDecision.id))
        )
    )


def requeue(session: Session, conversation: Conversation, reason: str, now: datetime) -> None:
    """Back to the queue, unassigned (the previous assignee hears about it)."""
    previous = conversation.assignee_id
    conversation.assignee_id = None
    conversation.status = "queued"
    conversation.assigned_at = None
    conversation.updated_at = now
    session.add(conversation)
    session.add(
        RoutingDecision(
            conversation_id=conversation.id,  # type: ignore[arg-type]
            strategy="requeued",
            team_id=conversation.team_id,
            winner_id=None,
            candidates=[],
            reason=reason,
            created_at=now,
        )
    )
    conversation_rows.changed(session, conversation, {"assignee_id", "status"}, now)
    conversation_rows.emit(session, "conversation.updated", conversation, extra_users=(previous,))


def unanswered_of(session: Session, user_ids: list[int]) -> list[Conversation]:
    """Assigned conversations whose last message is the customer's (nobody answered it yet)."""
    if not user_ids:
        return []
    return list(
        session.exec(
            select(Conversation).where(
                col(Conversation.assignee_id).in_(user_ids),
                Conversation.status == "assigned",
                col(Conversation.last_customer_message_at).is_not(None),
                col(Conversation.last_customer_message_at) >= col(Conversation.last_message_at),
            )
        )
    )


def explain(decision: RoutingDecision) -> dict[str, Any]:
    return {
        "id": str(decision.id),
        "conversation_id": str(decision.conversation_id),
        "strategy": decision.strategy,
        "rule_id": str(decision.rule_id) if decision.rule_id else None,
        "team_id": str(decision.team_id) if decision.team_id else None,
        "winner_id": str(decision.winner_id) if decision.winner_id else None,
        "candidates": decision.candidates,
        "reason": decision.reason,
        "created_at": decision.created_at,
    }
