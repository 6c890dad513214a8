"""People who use MAX and the tokens they use it with."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Index, String
from sqlmodel import Field, SQLModel

from max_server.models.base import created_at_field, fk, id_field, time_field

ROLES = ("agent", "supervisor", "admin")
PRESENCES = ("online", "away", "offline")


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('agent', 'supervisor', 'admin')", name="role"),
        CheckConstraint("presence IN ('online', 'away', 'offline')", name="presence"),
        CheckConstraint("capacity >= 0", name="capacity"),
        Index("ix_users_presence_active", "presence", "is_active"),
    )

    id: int | None = id_field()
    name: str = Field(max_length=200)
    email: str = Field(max_length=320, sa_type=String(320), unique=True)
    role: str = Field(default="agent", max_length=16)
    capacity: int = Field(default=5)
    presence: str = Field(default="offline", max_length=16)
    last_seen_at: datetime | None = time_field()
    presence_changed_at: datetime | None = time_field()
    is_active: bool = Field(default=True)
    created_at: datetime = created_at_field()


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_tokens"

    id: int | None = id_field()
    user_id: int = fk("users.id")
    token_hash: str = Field(max_length=64, unique=True)
    name: str = Field(default="default", max_length=100)
    created_at: datetime = created_at_field()
    last_used_at: datetime | None = time_field()
    revoked_at: datetime | None = time_field()
