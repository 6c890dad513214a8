"""Routing: triage at ingest, assignment jobs per team, the presence sweep."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm.attributes import get_history
from sqlmodel import Session

from max_server.jobs import queue
from max_server.jobs.registry import JobContext, RetryPolicy, handler, periodic
from max_server.models import Conversation, User
from max_server.services import conversation_rows, inbound, presence, rate_limits, routing
from max_server.settings import Settings

SWEEP_EVERY = 15
_ROUTER = "max_routing"  # session.info flag: changes made by the router itself


ASSIGN = "routing.assign"


def _assign_key(team_id: int) -> str:
    """A team's passes run one at a time, in order; joining and absorbing go by this key too."""
    return f"assign:{team_id}"


def enqueue_assign(session: Session, team_id: int | None) -> None:
    """An assignment pass for the team that starts after this transaction commits, after
    whatever is in flight for it (ordered): a queued one joined, or a new one."""
    if team_id is not None:
        queue.join_or_enqueue(session, ASSIGN, {"team_id": team_id}, ordering_key=_assign_key(team_id))


@inbound.on_message(inbound.ORDER_TRIAGE)
def triage_new_conversation(
    session: Session, stored: inbound.Ingested, settings: Settings, now: datetime
) -> None:
    """Rules set team, priority and skills before anyone hears of the conversation."""
    if stored.conversation_created:
        routing.triage(session, stored.conversation, stored.message.content_text, now)


@inbound.on_message(inbound.ORDER_ROUTING)
def route_new_message(session: Session, stored: inbound.Ingested, settings: Settings, now: datetime) -> None:
    if rate_limits.FLAG in stored.message.flags:
        return  # held: supervisors decide
    conversation = stored.conversation
    if rate_limits.release_if_clear(session, stored, now):
        return  # its change (``rate_limited``) runs the team's assignment
    if stored.conversation_created or stored.reopened or conversation.status == "queued":
        enqueue_assign(session, conversation.team_id)


@conversation_rows.on_change(order=10)  # before any hook's query flushes the previous assignee away
def follow_changes(
    session: Session, conversation: Conversation, fields: frozenset[str], now: datetime
) -> None:
    """Something entered a queue or an agent freed a slot: run the assignment of the
    conversation's team and of every team the freed agent belongs to (their slot serves all)."""
    if session.info.get(_ROUTER) or "created" in fields:
        return  # the router's own assignments; new conversations are routed after triage
    if not fields & {"status", "assignee_id", "team_id", "closed_at", "rate_limited"}:
        return
    freed: set[int | None] = set()
    if "assignee_id" in fields:
        freed.update(get_history(conversation, "assignee_id").deleted or ())
    if conversation.status == "closed" and fields & {"status", "closed_at"}:
        freed.add(conversation.assignee_id)
    teams = {conversation.team_id}
    for user_id in sorted(u for u in freed if u is not None):
        teams.update(routing.teams_of(session, user_id))
    for team_id in sorted(t for t in teams if t is not None):
        enqueue_assign(session, team_id)


@presence.on_presence_change
def agent_came_online(session: Session, user: User, previous: str, now: datetime) -> None:
    if user.presence == "online" and previous != "online" and user.id is not None:
        for team_id in routing.teams_of(session, user.id):
            enqueue_assign(session, team_id)


@handler(ASSIGN, RetryPolicy(max_attempts=5, base_delay=1, max_delay=30))
def assign(ctx: JobContext, payload: dict[str, Any]) -> None:
    team_id, now = int(payload["team_id"]), _now()
    with ctx.db.session() as session:
        session.info[_ROUTER] = True
        # Every conversation queued behind this job asked for a pass of its own: this one, reading
        # the queue after the absorption, covers them all (a burst is one pass, not hundreds).
        queue.absorb_followers(session, ctx.job_id, ASSIGN, _assign_key(team_id), now)
        routing.assign_queue(session, team_id, now, ctx.settings.routing.skills_relax_after)
        session.commit()


@handler("routing.sweep", RetryPolicy(max_attempts=2, base_delay=1))
def sweep(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Presence timeouts, requeues, and a pass over every team with a queue (skills relax)."""
    now = _now()
    settings = ctx.settings.routing
    with ctx.db.session() as session:
        presence.sweep(session, now, settings.presence_timeout, settings.requeue_after)
        session.commit()
    with ctx.db.session(write=False) as session:
        teams = routing.teams_with_queue(session)
    for team_id in teams:
        with ctx.db.session() as session:
            session.info[_ROUTER] = True
            routing.assign_queue(session, team_id, now, settings.skills_relax_after)
            session.commit()


def _now() -> datetime:
    from max_server import clock

    return clock.now()


periodic("routing.sweep", SWEEP_EVERY)
