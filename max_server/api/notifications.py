"""The caller's notifications."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from max_server.api.deps import AgentActor, SessionDep
from max_server.schemas import NotificationList, NotificationPublic
from max_server.services import notifications
from max_server.services.pagination import decode_cursor, encode_cursor

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"])


@router.get("", response_model=NotificationList)
def list_notifications(
    session: SessionDep,
    actor: AgentActor,
    unread: bool = False,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> NotificationList:
    """Unread first, then newest first; ``unread_count`` counts all unread."""
    position = decode_cursor(cursor)
    after = (int(position["r"]), int(position["id"])) if position else None
    rows, following, unread_count = notifications.list_for(
        session, actor, unread_only=unread, after=after, limit=limit
    )
    return NotificationList(
        notifications=[NotificationPublic.model_validate(n) for n in rows],
        unread_count=unread_count,
        next_cursor=encode_cursor(r=following[0], id=following[1]) if following else None,
    )


@router.post("/{notification_id}/read", response_model=NotificationPublic)
def mark_read(session: SessionDep, actor: AgentActor, notification_id: int) -> NotificationPublic:
    return NotificationPublic.model_validate(notifications.mark_read(session, actor, notification_id))


@router.post("/read-all", response_model=dict[str, int])
def mark_all_read(session: SessionDep, actor: AgentActor) -> dict[str, int]:
    return {"marked": notifications.mark_all_read(session, actor)}
