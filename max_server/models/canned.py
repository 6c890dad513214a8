"""Canned responses: quick replies agents insert with ``/shortcut``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Index, text
from sqlmodel import Field, SQLModel

from max_server.models.base import created_at_field, fk, id_field


class CannedResponse(SQLModel, table=True):
    __tablename__ = "canned_responses"
    __table_args__ = (
        CheckConstraint("scope IN ('global', 'team', 'personal')", name="scope"),
        CheckConstraint(
            "(scope = 'global' AND team_id IS NULL AND owner_id IS NULL)"
            " OR (scope = 'team' AND team_id IS NOT NULL AND owner_id IS NULL)"
            " OR (scope = 'personal' AND owner_id IS NOT NULL AND team_id IS NULL)",
            name="scope_owner",
        ),
        # A shortcut is unique within its scope (the same one may exist in several scopes).
        Index(
            "uq_canned_global_shortcut",
            "shortcut",
            unique=True,
            postgresql_where=text("scope = 'global'"),
            sqlite_where=text("scope = 'global'"),
        ),
        Index(
            "uq_canned_team_shortcut",
            "team_id",
            "shortcut",
            unique=True,
            postgresql_where=text("scope = 'team'"),
            sqlite_where=text("scope = 'team'"),
        ),
        Index(
            "uq_canned_personal_shortcut",
            "owner_id",
            "shortcut",
            unique=True,
            postgresql_where=text("scope = 'personal'"),
            sqlite_where=text("scope = 'personal'"),
        ),
    )

    id: int | None = id_field()
    scope: str = Field(default="global", max_length=16)
    team_id: int | None = fk("teams.id", nullable=True, index=False)
    owner_id: int | None = fk("users.id", nullable=True, index=False)
    shortcut: str = Field(max_length=64)
    title: str = Field(max_length=200)
    content: str = Field(max_length=4096)
    category: str | None = Field(default=None, max_length=64)
    usage_count: int = Field(default=0)
    created_by_id: int | None = fk("users.id", nullable=True, ondelete="SET NULL", index=False)
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()
