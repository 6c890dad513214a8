"""Notifications for people: a row each, plus a ``notification.created`` event for the live stream.

A notification's ``kind`` is the event type that caused it (``conversation.escalated``, …).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, case, func, or_, update
from sqlmodel import Session, col, select

from max_server import clock
from max_server.access import Actor
from max_server.errors import not_found
from max_server.models import Notification, TeamMember, User
from max_server.schemas import NotificationPublic
from max_server.services import events
from max_server.services.pagination import clamp_limit


def team_supervisors(session: Session, team_id: int | None) -> list[int]:
    """Who hears about a team's conversations: its supervisors, else the admins."""
    ids: list[int] = []
    if team_id is not None:
        ids = list(
            session.exec(
                select(TeamMember.user_id)
                .join(User, col(User.id) == TeamMember.user_id)
                .where(
                    TeamMember.team_id == team_id,
                    TeamMember.role == "supervisor",
                    col(User.is_active).is_(True),
                )
            )
        )
    return ids or admins(session)


def admins(session: Session) -> list[int]:
    return [
        uid
        for uid in session.exec(select(User.id).where(User.role == "admin", col(User.is_active).is_(True)))
        if uid is not None
    ]


def notify(
    session: Session, user_ids: Iterable[int], kind: str, text: str, data: dict[str, Any] | None = None
) -> list[Notification]:
    """Writes one notification per user and its event, in the caller's transaction."""
    rows = []
    for user_id in sorted(set(user_ids)):
        row = Notification(user_id=user_id, kind=kind, text=text, data=data or {})
        session.add(row)
        session.flush()
        events.emit(
            session,
            "notification.created",
            NotificationPublic.model_validate(row),
            to=events.audience(users=[user_id], private=True),
        )
        rows.append(row)
    return rows


def list_for(
    session: Session,
    actor: Actor,
    *,
    unread_only: bool = False,
    after: tuple[int, int] | None = None,
    limit: int | None = None,
) -> tuple[list[Notification], tuple[int, int] | None, int]:
    """Unread first, then newest first. Returns the page, the position to continue after
    (``(read, id)``) and the unread count."""
    size = clamp_limit(limit)
    is_read = case((col(Notification.read_at).is_(None), 0), else_=1)
    query = select(Notification).where(Notification.user_id == actor.user_id)
    if unread_only:
        query = query.where(col(Notification.read_at).is_(None))
    if after is not None:
        read, last_id = after
        query = query.where(or_(is_read > read, and_(is_read == read, col(Notification.id) < last_id)))
    rows = list(session.exec(query.order_by(is_read, col(Notification.id).desc()).limit(size + 1)))
    unread = session.exec(
        select(func.count())
        .select_from(Notification)
        .where(Notification.user_id == actor.user_id, col(Notification.read_at).is_(None))
    ).one()
    more = len(rows) > size
    rows = rows[:size]
    last = rows[-1] if more and rows else None
    position = (0 if last.read_at is None else 1, last.id or 0) if last else None
    return rows, position, int(unread)


def mark_read(session: Session, actor: Actor, notification_id: int) -> Notification:
    row = session.get(Notification, notification_id)
    if row is None or row.user_id != actor.user_id:
        raise not_found("notification", notification_id)
    if row.read_at is None:
        row.read_at = clock.now()
        session.add(row)
        session.commit()
    return row


def mark_all_read(session: Session, actor: Actor) -> int:
    result = session.execute(
        update(Notification)
        .where(col(Notification.user_id) == actor.user_id, col(Notification.read_at).is_(None))
        .values(read_at=clock.now())
    )
    session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]
