"""The event outbox: services write events in their own transaction; the sequencer numbers the
committed ones gap-free; readers resume "after seq N" without ever skipping a late commit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Integer, bindparam, func, insert, text, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, delete, select

from max_server import clock, wakeup
from max_server.access import Actor
from max_server.db import is_postgres
from max_server.models import Event
from max_server.services.pagination import clamp_limit

_SEQUENCER_LOCK = 0x4D41_5853  # "MAXS"
_INSERT = insert(Event.__table__)  # type: ignore[attr-defined]
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
    _, payload, _ = event_row(type_, data, to=to)
    event = Event(type=type_, data=payload, audience=to)
    session.add(event)
    wakeup.request(session, "events")
    return event


EventRow = tuple[str, dict[str, Any], dict[str, Any]]


def event_row(type_: str, data: BaseModel | dict[str, Any], *, to: dict[str, Any]) -> EventRow:
    """An event for :func:`emit_rows` (the arguments of :func:`emit`)."""
    return type_, data.model_dump(mode="json") if isinstance(data, BaseModel) else data, to


def emit_rows(session: Session, rows: Sequence[EventRow]) -> None:
    """:func:`emit` for several events, in order, in one plain INSERT: no ORM objects and no ids
    read back, several times cheaper, for paths as hot as ingest."""
    now = clock.now()
    session.execute(
        _INSERT,
        [{"seq": None, "type": t, "data": data, "audience": to, "created_at": now} for t, data, to in rows],
    )
    wakeup.request(session, "events")


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
        session.execute(_SEQUENCER_LOCK_SQL, {"k": _SEQUENCER_LOCK})
    # The pending events and the latest seq in one statement (after the lock: no other sequencer
    # runs until this transaction ends), then their numbers in one UPDATE run for all of them.
    rows = session.execute(_PENDING, {"batch": batch}).all()
    if not rows:
        return []
    top = int(rows[0][1])
    pending = [event for event, _ in rows]
    numbers = [{"event_id": event.id, "seq": top + offset} for offset, event in enumerate(pending, start=1)]
    session.execute(_NUMBER, numbers)
    for event, number in zip(pending, numbers, strict=True):
        set_committed_value(event, "seq", number["seq"])  # as stored: nothing left to flush
    for hook in _hooks:
        hook(session, pending)
    wakeup.request(session, "seq")
    return pending


_LATEST = select(func.coalesce(func.max(Event.seq), 0))
_PENDING = (
    select(Event, _LATEST.scalar_subquery())
    .where(col(Event.seq).is_(None))
    .order_by(col(Event.id))
    .limit(bindparam("batch", type_=Integer()))
)
_SEQUENCER_LOCK_SQL = text("SELECT pg_advisory_xact_lock(:k)")
_NUMBER = (
    update(Event.__table__)  # type: ignore[attr-defined]
    .where(Event.__table__.c.id == bindparam("event_id"))  # type: ignore[attr-defined]
    .values(seq=bindparam("seq"))
)


def latest_seq(session: Session) -> int:
    return int(session.execute(_LATEST).scalar_one() or 0)


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
