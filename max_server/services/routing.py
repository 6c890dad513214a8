"""Triage and automatic assignment, serialized per team; the agents a pass assigns to are locked
too (an agent in several teams is counted by each team's pass), so counting load and assigning
can never overbook anyone (advisory locks on PostgreSQL, see ``routing_pool``; SQLite has one
writer)."""

from __future__ import annotations

import zlib
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, and_, bindparam, case, func, or_
from sqlmodel import Session, col, select

from max_server.db import is_postgres
from max_server.domain import routing as rules
from max_server.domain.routing import Candidate, Choice
from max_server.models import (
    ChannelAccount,
    Conversation,
    Customer,
    RoutingRule,
    Team,
    TeamMember,
)
from max_server.services import conversation_rows, routing_decisions, routing_pool

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


# The pass's statements are built once: building them costs more than running them.
_TEAM = select(Team).where(Team.id == bindparam("team"))
_LOCKED_TEAM = _TEAM.where(func.pg_advisory_xact_lock(bindparam("key", type_=BigInteger)).is_not(None))
_RANK = case(PRIORITY_RANK, value=Conversation.priority, else_=9)
_AGE = func.coalesce(Conversation.queued_at, Conversation.created_at)
# Customers and channel accounts come along: the assignment events present them.
_QUEUE = (
    select(Conversation, Customer, ChannelAccount)
    .join(Customer, col(Customer.id) == Conversation.customer_id)
    .join(ChannelAccount, col(ChannelAccount.id) == Conversation.channel_account_id)
    .where(
        Conversation.team_id == bindparam("team"),
        Conversation.status == "queued",
        col(Conversation.rate_limited).is_(False),
    )
    .order_by(_RANK, _AGE, col(Conversation.id))
    .limit(BATCH)
)


def lock_team(session: Session, team_id: int) -> Team | None:
    """Serializes the team's passes and reads the team in the same statement (the lock comes
    first on PostgreSQL; the team's row may be read a moment before it is granted: only its
    ``auto_assign`` matters here. The queue and the agents are read in later statements)."""
    if not is_postgres(session):
        return session.exec(_TEAM, params={"team": team_id}).first()
    key = zlib.crc32(f"max:team:{team_id}".encode())
    return session.exec(_LOCKED_TEAM, params={"team": team_id, "key": key}).first()


def _age(conversation: Conversation) -> datetime:
    return conversation.queued_at or conversation.created_at


def queued(
    session: Session,
    team_id: int,
    limit: int = BATCH,
    after: Conversation | None = None,
    keep: list[object] | None = None,
) -> list[Conversation]:
    """The team's queue: by priority, then age (held, rate-limited ones wait for a supervisor);
    ``after``: the page that follows that conversation. ``keep`` collects the customers and
    channel accounts read along (the session's identity map holds rows only while they are
    referenced: the assignment events find them there)."""
    query = _QUEUE if limit == BATCH else _QUEUE.limit(limit)
    if after is not None:
        rank, age = _RANK, _AGE
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
    rows = session.exec(query, params={"team": team_id}).all()
    if keep is not None:
        keep.extend(related for row in rows for related in row[1:])
    return [row[0] for row in rows]


def assign_queue(session: Session, team_id: int, now: datetime, relax_after: int) -> int:
    """Assigns what the team's online agents have room for, page after page of the queue while
    someone has room; records why the others wait when that changed. Returns how many were
    assigned. Caller commits."""
    team = lock_team(session, team_id)
    if team is None or not team.auto_assign:
        return 0
    keep: list[object] = []
    page = queued(session, team_id, keep=keep)
    if not page:
        return 0
    skills = routing_pool.skill_names(c.required_skills for c in page)
    pool = routing_pool.candidates(session, team_id, skills)
    reservations = routing_pool.Reservations(session)
    assigned = 0
    while page:
        decided, waiting = _settle(pool, page, now, relax_after, reservations)
        for conversation, choice in decided:
            _assign(session, conversation, choice, now)
        assigned += len(decided)
        routing_decisions.record_waits(session, pool, waiting, now)
        if len(page) < BATCH or not any(c.has_room for c in pool):
            break
        page = queued(session, team_id, after=page[-1], keep=keep)
        needed = routing_pool.skill_names(c.required_skills for c in page) - skills
        if needed:  # a later page may ask for skills the first did not
            routing_pool.load_skills(session, team_id, pool, needed)
            skills |= needed
    return assigned


Decided = list[tuple[Conversation, Choice]]
Before = dict[int, tuple[Candidate, int, datetime | None]]  # each winner's load and idleness


def _settle(
    pool: list[Candidate],
    page: list[Conversation],
    now: datetime,
    relax_after: int,
    reservations: routing_pool.Reservations,
) -> tuple[Decided, list[routing_decisions.Waiting]]:
    """Chooses for the page, then locks the agents it chose and counts their load again: one lock
    statement and one count for the whole page, whatever its size. If another team's pass
    changed one of them since the pool was read (rare), the page is chosen again with the fresh
    counts, and so on until every agent chosen is locked and counted (each round locks someone
    new, so this ends)."""
    while True:
        decided, waiting, before = _decide(pool, page, now, relax_after)
        fresh, held_elsewhere = reservations.secure(before)
        if not held_elsewhere and all(before[user_id][1:] == usage for user_id, usage in fresh.items()):
            return decided, waiting
        # Undo the page's choices; choose again with the fresh counts and without the agents
        # another pass holds (waiting for them could deadlock, see ``Reservations.secure``).
        for candidate, load, idle_since in before.values():
            candidate.load, candidate.idle_since = load, idle_since
        for user_id, usage in fresh.items():
            before[user_id][0].load, before[user_id][0].idle_since = usage
        pool[:] = [c for c in pool if c.user_id not in held_elsewhere]


def _decide(
    pool: list[Candidate], page: list[Conversation], now: datetime, relax_after: int
) -> tuple[Decided, list[routing_decisions.Waiting], Before]:
    """The choice for each conversation of the page, in queue order, counting each choice in
    the winner's load before the next (nothing is written); and what the winners had before."""
    decided: Decided = []
    waiting: list[routing_decisions.Waiting] = []
    before: Before = {}
    with_room = sum(1 for c in pool if c.has_room)  # kept up to date: no scan per conversation
    for conversation in page:
        required = list(conversation.required_skills or [])
        may_relax = now - _age(conversation) >= timedelta(seconds=relax_after)
        if not with_room:
            waiting.append((conversation, required, may_relax, None))
            continue
        choice = rules.choose(pool, required, may_relax=may_relax)
        winner = choice.winner
        if winner is None:
            waiting.append((conversation, required, may_relax, choice))
            continue
        before.setdefault(winner.user_id, (winner, winner.load, winner.idle_since))
        winner.load += 1
        winner.idle_since = now
        with_room -= 0 if winner.has_room else 1
        decided.append((conversation, choice))
    return decided, waiting, before


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
