"""Notifications for people, and the audit log of who did what."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from max_server.models.base import created_at_field, fk, id_field, json_field, time_field


class Notification(SQLModel, table=True):
    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_read", "user_id", "read_at", "id"),)

    id: int | None = id_field()
    user_id: int = fk("users.id", index=False)
    kind: str = Field(max_length=64)
    text: str
    data: dict[str, Any] = json_field(dict)
    read_at: datetime | None = time_field()
    created_at: datetime = created_at_field()


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_target", "target_type", "target_id"),)

    id: int | None = id_field()
    actor_user_id: int | None = fk("users.id", nullable=True, ondelete="SET NULL")
    actor: str = Field(max_length=100)
    action: str = Field(max_length=64, index=True)
    target_type: str = Field(max_length=32)
    target_id: str | None = Field(default=None, max_length=64)
    data: dict[str, Any] = json_field(dict)
    created_at: datetime = created_at_field()
