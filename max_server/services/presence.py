"""Agents' presence: a heartbeat keeps them ``online``; a sweep turns silent ones ``away``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlmodel import Session

from max_server.access import Actor
from max_server.models import User
from max_server.services import events, present, users

PresenceHook = Callable[[Session, User, str, datetime], None]
_hooks: list[PresenceHook] = []


def on_presence_change(hook: PresenceHook) -> PresenceHook:
    """Registers ``hook(session, user, previous_presence, now)`` (routing drains queues when an
    agent comes online)."""
    if hook not in _hooks:
        _hooks.append(hook)
    return hook


def set_presence(session: Session, user: User, presence: str, now: datetime) -> User:
    """Records a heartbeat (``last_seen_at``) and a presence change with its event. No commit."""
    previous = user.presence
    user.last_seen_at = now
    if presence != previous:
        user.presence = presence
        user.presence_changed_at = now
    session.add(user)
    if presence != previous:
        session.flush()
        events.emit(
            session,
            "agent.presence_changed",
            {**present.user(user).model_dump(mode="json"), "previous_presence": previous},
            to=events.audience(everyone=True),
        )
        for hook in list(_hooks):
            hook(session, user, previous, now)
    return user


def heartbeat(session: Session, actor: Actor, presence: str, now: datetime) -> User:
    assert actor.user_id is not None
    user = set_presence(session, users.get_user(session, actor.user_id), presence, now)
    session.commit()
    return user


def sweep(
    session: Session, now: datetime, presence_timeout: int, requeue_after: int
) -> tuple[int, list[int]]:
    """Silent agents become ``away``; the unanswered conversations of agents away or offline for
    ``requeue_after`` go back to the queue. Returns (turned away, requeued conversation ids).
    The caller commits."""
    from sqlmodel import col, or_, select

    from max_server.services import routing

    silent_since = now - timedelta(seconds=presence_timeout)
    silent = session.exec(
        select(User).where(
            User.presence == "online",
            or_(col(User.last_seen_at).is_(None), col(User.last_seen_at) < silent_since),
        )
    ).all()
    for user in silent:
        previous = user.presence
        user.presence = "away"
        user.presence_changed_at = now
        session.add(user)
        session.flush()
        events.emit(
            session,
            "agent.presence_changed",
            {**present.user(user).model_dump(mode="json"), "previous_presence": previous},
            to=events.audience(everyone=True),
        )
    gone_since = now - timedelta(seconds=requeue_after)
    gone = [
        u.id
        for u in session.exec(
            select(User).where(
                col(User.presence).in_(("away", "offline")),
                or_(col(User.presence_changed_at).is_(None), col(User.presence_changed_at) <= gone_since),
            )
        )
        if u.id is not None
    ]
    requeued = []
    for conversation in routing.unanswered_of(session, gone):
        routing.requeue(session, conversation, "its agent has been away since before the requeue time", now)
        requeued.append(conversation.id or 0)
    return len(silent), requeued
