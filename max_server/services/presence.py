"""Agents' presence: a heartbeat keeps them ``online``; a sweep turns silent ones ``away``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

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
