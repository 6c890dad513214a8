"""Triage and automatic assignment, serialized per team, with the agents it may assign to locked
too (an agent in several teams is counted by each team's pass), so counting load and assigning
can never overbook anyone (advisory locks on PostgreSQL; SQLite has one writer)."""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, ColumnElement, and_, any_, bindparam, case, func, or_, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Session, col, select

from max_server.db import is_postgres
from max_server.domain import routing as rules
from max_server.domain.routing import Candidate, Choice
from max_server.models import (
    AgentSkill,
    ChannelAccount,
    Conversation,
    RoutingRule,
    Team,
    TeamMember,
    User,
)
from max_server.services import conversation_rows, routing_decisions

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
    routing_decisions.note(
        session,
        conversation,
        "triage",
        f"rule {rule.position} {rule.name!r} matched"
        if rule
        else "no rule matched: the channel's default team",
        now,
        rule_id=rule.id if rule else None,
    )
    if changed:
        conversation_rows.changed(session, conversation, changed, now)
    return rule


def lock_team(session: Session, team_id: int) -> None:
    if is_postgres(session):
        key = zlib.crc32(f"max:team:{team_id}".encode())
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


# Agents' locks use PostgreSQL's two-key advisory lock space (apart from the one-key locks of
# teams, customers and the sequencer); user ids fold into 31 bits, a collision only serializes.
_AGENT_LOCKS = zlib.crc32(b"max:agent") & 0x7FFFFFFF
_ID_ARRAY = ARRAY(BigInteger)


def lock_agents(session: Session, user_ids: Iterable[int]) -> None:
    """Locks agents' load until commit, in ascending order (two passes can never deadlock). An
    agent in several teams is counted by each team's pass: the team lock alone cannot stop two
    teams from filling the same last slot."""
    keys = sorted({user_id & 0x7FFFFFFF for user_id in user_ids})
    if keys and is_postgres(session):
        session.execute(
            text("SELECT pg_advisory_xact_lock(:ns, k) FROM unnest(CAST(:keys AS integer[])) AS k"),
            {"ns": _AGENT_LOCKS, "keys": keys},
        )


def _usage(session: Session, who: ColumnElement[bool]) -> dict[int, tuple[int, datetime | None]]:
    """Open assigned conversations and the last assignment of the agents ``who`` selects."""
    return {
        row[0]: (int(row[1]), row[2])
        for row in session.execute(
            select(
                Conversation.assignee_id,
                func.count(case((col(Conversation.status) == "assigned", 1))),
                func.max(Conversation.assigned_at),
            )
            .where(who)
            .group_by(col(Conversation.assignee_id))
        ).all()
    }


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
    usage = _usage(session, col(Conversation.assignee_id).in_(in_team))
    pool = [
        Candidate(
            user_id=user_id,
            name=name,
            capacity=capacity,
            load=usage.get(user_id, (0, None))[0],
            idle_since=usage.get(user_id, (0, None))[1],
        )
        for user_id, name, capacity in members
    ]
    if with_skills:
        load_skills(session, pool)
    return pool


def load_skills(session: Session, pool: list[Candidate]) -> None:
    by_id = {c.user_id: c for c in pool}
    for user_id, skill, level in session.execute(
        select(AgentSkill.user_id, AgentSkill.skill, AgentSkill.proficiency).where(
            col(AgentSkill.user_id).in_(sorted(by_id))
        )
    ).all():
        by_id[user_id].skills[skill] = level


def reserve(session: Session, pool: list[Candidate]) -> None:
    """Locks the agents with room (the only ones this pass may assign to) and counts their load
    again under the lock: another team's pass may have filled a slot since ``candidates``. An
    agent full at first stays full for this pass (if they free a slot, their teams run again)."""
    if not is_postgres(session):
        return  # one writer: nothing changed since ``candidates``
    with_room = [c for c in pool if c.has_room]
    if not with_room:
        return
    ids = [c.user_id for c in with_room]
    lock_agents(session, ids)
    # One array parameter (PostgreSQL), not hundreds of IN parameters: this runs on every pass.
    usage = _usage(session, col(Conversation.assignee_id) == any_(bindparam("ids", ids, type_=_ID_ARRAY)))
    for candidate in with_room:
        candidate.load, candidate.idle_since = usage.get(candidate.user_id, (0, None))


def _age(conversation: Conversation) -> datetime:
    return conversation.queued_at or conversation.created_at


def queued(
    session: Session, team_id: int, limit: int = BATCH, after: Conversation | None = None
) -> list[Conversation]:
    """The team's queue: by priority, then age (held, rate-limited ones wait for a supervisor);
    ``after``: the page that follows that conversation."""
    rank = case(PRIORITY_RANK, value=Conversation.priority, else_=9)
    age = func.coalesce(Conversation.queued_at, Conversation.created_at)
    query = select(Conversation).where(
        Conversation.team_id == team_id,
        Conversation.status == "queued",
        col(Conversation.rate_limited).is_(False),
    )
    if after is not None:
        after_rank, after_age = PRIORITY_RANK.get(after.priority, 9), _age(after)
        query = query.where(
            or_(
                rank > after_rank,
                and_(
                    rank == after_rank,
                    or_(age > after_age, and_(age == after_age, col(Conversation.id) > after.id)),
                ),
            )
        )
    return list(session.exec(query.order_by(rank, age, col(Conversation.id)).limit(limit)))


def assign_queue(session: Session, team_id: int, now: datetime, relax_after: int) -> int:
    """Assigns what the team's online agents have room for, page after page of the queue while
    someone has room; records why the others wait when that changed. Returns how many were
    assigned. Caller commits."""
    lock_team(session, team_id)
    team = session.get(Team, team_id)
    if team is None or not team.auto_assign:
        return 0
    page = queued(session, team_id)
    if not page:
        return 0
    with_skills = any(c.required_skills for c in page)
    pool = candidates(session, team_id, with_skills=with_skills)
    reserve(session, pool)
    by_id = {c.user_id: c for c in pool}
    assigned = 0
    while page:
        if not with_skills and any(c.required_skills for c in page):
            load_skills(session, pool)
            with_skills = True
        waiting: list[routing_decisions.Waiting] = []
        for conversation in page:
            required = list(conversation.required_skills or [])
            may_relax = now - _age(conversation) >= timedelta(seconds=relax_after)
            if not any(c.has_room for c in pool):
                waiting.append((conversation, required, may_relax, None))
                continue
            choice = rules.choose(pool, required, may_relax=may_relax)
            if choice.winner is None:
                waiting.append((conversation, required, may_relax, choice))
                continue
            _assign(session, conversation, choice, now)
            by_id[choice.winner.user_id].load += 1
            by_id[choice.winner.user_id].idle_since = now
            assigned += 1
        routing_decisions.record_waits(session, pool, waiting, now)
        if len(page) < BATCH or not any(c.has_room for c in pool):
            break
        page = queued(session, team_id, after=page[-1])
    return assigned


def _assign(session: Session, conversation: Conversation, choice: Choice, now: datetime) -> None:
    assert choice.winner is not None
    conversation.assignee_id = choice.winner.user_id
    conversation.status = "assigned"
    conversation.assigned_at = now
    conversation.updated_at = now
    session.add(conversation)
    routing_decisions.record(session, conversation, choice, now)
    conversation_rows.changed(session, conversation, {"assignee_id", "status"}, now)
    conversation_rows.emit(session, "conversation.assigned", conversation)


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


def requeue(session: Session, conversation: Conversation, reason: str, now: datetime) -> None:
    """Back to the queue, unassigned (the previous assignee hears about it), at its old place:
    its customer has been waiting all along, so it keeps the age it had in the queue."""
    previous, age = conversation.assignee_id, _age(conversation)
    conversation.assignee_id = None
    conversation.status = "queued"
    conversation.assigned_at = None
    conversation.updated_at = now
    session.add(conversation)
    routing_decisions.note(session, conversation, "requeued", reason, now)
    conversation_rows.changed(session, conversation, {"assignee_id", "status"}, now)
    conversation.queued_at = age  # ``changed`` restarts the age of whatever enters the queue
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
