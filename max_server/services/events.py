"""The event outbox: services write events in their own transaction; the sequencer numbers the
committed ones gap-free; readers resume "after seq N" without ever skipping a late commit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, text
from sqlmodel import Session, col, delete, select

from max_server import wakeup
from max_server.access import Actor
from max_server.db import is_postgres
from max_server.models import Event
from max_server.services.pagination import clamp_limit

_SEQUENCER_LOCK = 0x4D41_5853  # "MAXS"
SequencedHook = Callable[[Session, Sequence[Event]], None]
_hooks: list[SequencedHook] = []


def audience(
    *,
    teams: Iterable[int | None] = (),
    users: Iterable[int | None] = (),
    everyone: bool = False,
    private: bool = False,
) -> dict[str, Any]:
    """Who may receive an event. ``private`` events (a person's own notifications) go only to
    the listed users: not even admins see other people's."""
    found: dict[str, Any] = {
        "teams": sorted({t for t in teams if t is not None}),
        "users": sorted({u for u in users if u is not None}),
        "all": everyone,
    }
    if private:
        found["private"] = True
    return found


def emit(session: Session, type_: str, data: BaseModel | dict[str, Any], *, to: dict[str, Any]) -> Event:
    """Writes an event in the caller's transaction (``to`` from :func:`audience`)."""
    payload = data.model_dump(mode="json") if isinstance(data, BaseModel) else data
    event = Event(type=type_, data=payload, audience=to)
    session.add(event)
    wakeup.request(session, "events")
    return event


def may_receive(actor: Actor, event_audience: dict[str, Any]) -> bool:
    if event_audience.get("private"):  # before the admin shortcut: private means private
        return actor.user_id is not None and actor.user_id in event_audience.get("users", ())
    if actor.is_admin or event_audience.get("all"):
        return True
    if actor.user_id is not None and actor.user_id in event_audience.get("users", ()):
        return True
    return any(team in actor.teams for team in event_audience.get("teams", ()))


def envelope(event: Event) -> dict[str, Any]:
    return {
        "id": str(event.id),
        "seq": event.seq,
        "type": event.type,
        "created_at": event.created_at.isoformat().replace("+00:00", "Z"),
        "data": event.data,
    }


def on_sequenced(hook: SequencedHook) -> SequencedHook:
    """Registers ``hook(session, events)``, run in the sequencing transaction for each batch
    (outbound webhook deliveries are created this way, exactly once per event)."""
    if hook not in _hooks:
        _hooks.append(hook)
    return hook


def sequence_pending(session: Session, batch: int = 1000) -> list[Event]:
    """Numbers committed, unsequenced events in id order, one sequencer at a time. Caller commits."""
    if is_postgres(session):
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SEQUENCER_LOCK})
    pending = list(
        session.exec(select(Event).where(col(Event.seq).is_(None)).order_by(col(Event.id)).limit(batch))
    )
    if not pending:
        return []
    top = latest_seq(session)
    for offset, event in enumerate(pending, start=1):
        event.seq = top + offset
        session.add(event)
    session.flush()
    for hook in _hooks:
        hook(session, pending)
    wakeup.request(session, "seq")
    return pending


def latest_seq(session: Session) -> int:
    return int(session.exec(select(func.coalesce(func.max(Event.seq), 0))).one() or 0)


def oldest_seq(session: Session) -> int | None:
    return session.exec(select(func.min(Event.seq))).one()


def needs_resync(session: Session, after: int) -> bool:
    """True when events after ``after`` were pruned (or ``after`` is from another database)."""
    latest = latest_seq(session)
    if after > latest:
        return True
    oldest = oldest_seq(session)
    return oldest is not None and after < oldest - 1


def read_after(session: Session, after: int, limit: int = 500) -> list[Event]:
    return list(
        session.exec(select(Event).where(col(Event.seq) > after).order_by(col(Event.seq)).limit(limit))
    )


def visible_after(
    session: Session, actor: Actor, after: int, limit: int | None = None
) -> tuple[list[Event], int]:
    """Events after ``after`` the actor may receive, and the seq to continue from."""
    size = clamp_limit(limit)
    found: list[Event] = []
    cursor = after
    while len(found) < size:
        chunk = read_after(session, cursor, limit=max(size * 2, 100))
        if not chunk:
            break
        for event in chunk:
            cursor = event.seq or cursor
            if may_receive(actor, event.audience):
                found.append(event)
                if len(found) == size:
                    break
    return found, cursor


def prune(session: Session, before: datetime, batch: int = 5000) -> int:
    """Deletes one batch of sequenced events older than ``before``; call until it returns 0.
    The newest event is always kept, so ``seq`` never restarts."""
    latest = latest_seq(session)
    victims = (
        select(Event.id)
        .where(col(Event.created_at) < before, col(Event.seq).is_not(None), col(Event.seq) < latest)
        .order_by(col(Event.id))
        .limit(batch)
    )
    result = session.exec(delete(Event).where(col(Event.id).in_(victims.scalar_subquery())))
    return int(result.rowcount)
