"""The audit log: who did what to which thing. Written inside the caller's transaction."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from max_server.access import Actor
from max_server.models import AuditEntry


def record(
    session: Session,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: object = None,
    data: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditEntry(
            actor_user_id=actor.user_id,
            actor=actor.label,
            action=action,
            target_type=target_type,
            target_id=None if target_id is None else str(target_id),
            data=data or {},
        )
    )
