"""Teams, who belongs to them, and what agents are good at."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, UniqueConstraint
from sqlmodel import Field, SQLModel

from max_server.models.base import created_at_field, fk, id_field


class Team(SQLModel, table=True):
    __tablename__ = "teams"

    id: int | None = id_field()
    slug: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=200)
    timezone: str = Field(default="UTC", max_length=64)
    after_hours_message: str | None = Field(default=None)
    auto_assign: bool = Field(default=True)
    created_at: datetime = created_at_field()


class TeamMember(SQLModel, table=True):
    __tablename__ = "team_members"
    __table_args__ = (
        UniqueConstraint("team_id", "user_id", name="uq_team_members_team_user"),
        CheckConstraint("role IN ('member', 'supervisor')", name="role"),
    )

    id: int | None = id_field()
    team_id: int = fk("teams.id")
    user_id: int = fk("users.id")
    role: str = Field(default="member", max_length=16)
    created_at: datetime = created_at_field()


class AgentSkill(SQLModel, table=True):
    __tablename__ = "agent_skills"
    __table_args__ = (
        UniqueConstraint("user_id", "skill", name="uq_agent_skills_user_skill"),
        CheckConstraint("proficiency BETWEEN 1 AND 5", name="proficiency"),
    )

    id: int | None = id_field()
    user_id: int = fk("users.id")
    skill: str = Field(max_length=64, index=True)
    proficiency: int = Field(default=3)
