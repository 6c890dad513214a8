"""Business hours, holidays, SLA policies and targets, and what the SLA monitor records."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, Date, Index, Time, UniqueConstraint
from sqlmodel import Field, SQLModel

from max_server.models.base import UTCDateTime, created_at_field, fk, id_field


class BusinessHours(SQLModel, table=True):
    """One opening interval of a team's week; ``closes <= opens`` runs past midnight."""

    __tablename__ = "business_hours"
    __table_args__ = (CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday"),)

    id: int | None = id_field()
    team_id: int = fk("teams.id")
    weekday: int  # 0 = Monday
    opens: dt.time = Field(sa_type=Time)
    closes: dt.time = Field(sa_type=Time)


class Holiday(SQLModel, table=True):
    __tablename__ = "holidays"
    __table_args__ = (UniqueConstraint("team_id", "date", name="uq_holidays_team_date"),)

    id: int | None = id_field()
    team_id: int = fk("teams.id", index=False)
    date: dt.date = Field(sa_type=Date)
    name: str = Field(default="", max_length=200)


class SlaPolicy(SQLModel, table=True):
    __tablename__ = "sla_policies"
    __table_args__ = (
        UniqueConstraint("team_id", "priority", name="uq_sla_policies_team_priority"),
        CheckConstraint("priority IN ('low', 'normal', 'high', 'urgent')", name="priority"),
        CheckConstraint("frt_target_s > 0 AND resolution_target_s > 0", name="targets_positive"),
    )

    id: int | None = id_field()
    team_id: int = fk("teams.id", index=False)
    priority: str = Field(max_length=16)
    frt_target_s: int
    resolution_target_s: int
    escalation_after_s: int | None = Field(default=None)
    business_hours_only: bool = Field(default=False)
    created_at: dt.datetime = created_at_field()
    updated_at: dt.datetime = created_at_field()


class SlaTarget(SQLModel, table=True):
    """The compliance a team aims for per metric (the seed's "FRT 95 %, Resolution 90 %")."""

    __tablename__ = "sla_targets"
    __table_args__ = (
        UniqueConstraint("team_id", "metric", name="uq_sla_targets_team_metric"),
        CheckConstraint("metric IN ('frt', 'resolution')", name="metric"),
        CheckConstraint("compliance_pct >= 0 AND compliance_pct <= 100", name="pct"),
    )

    id: int | None = id_field()
    team_id: int = fk("teams.id", index=False)
    metric: str = Field(max_length=16)
    compliance_pct: float


class SlaViolation(SQLModel, table=True):
    """A breach, recorded once per conversation cycle and metric."""

    __tablename__ = "sla_violations"
    __table_args__ = (
        UniqueConstraint("conversation_id", "cycle", "kind", name="uq_sla_violations_once"),
        CheckConstraint("kind IN ('frt', 'resolution')", name="kind"),
        Index("ix_sla_violations_team_due", "team_id", "due_at"),
    )

    id: int | None = id_field()
    conversation_id: int = fk("conversations.id", index=False)
    cycle: int
    policy_id: int | None = fk("sla_policies.id", nullable=True, ondelete="SET NULL", index=False)
    team_id: int | None = fk("teams.id", nullable=True, ondelete="SET NULL", index=False)
    priority: str = Field(max_length=16)
    kind: str = Field(max_length=16)
    target_s: int
    actual_s: int
    due_at: dt.datetime = Field(sa_type=UTCDateTime, nullable=False)
    escalated: bool = Field(default=False)
    detected_at: dt.datetime = created_at_field()


class SlaOutcome(SQLModel, table=True):
    """How each metric of each conversation cycle ended: met or breached (for compliance)."""

    __tablename__ = "sla_outcomes"
    __table_args__ = (
        UniqueConstraint("conversation_id", "cycle", "metric", name="uq_sla_outcomes_once"),
        CheckConstraint("metric IN ('frt', 'resolution')", name="metric"),
        Index("ix_sla_outcomes_team_due", "team_id", "due_at"),
    )

    id: int | None = id_field()
    conversation_id: int = fk("conversations.id", index=False)
    cycle: int
    team_id: int | None = fk("teams.id", nullable=True, ondelete="SET NULL", index=False)
    priority: str = Field(max_length=16)
    metric: str = Field(max_length=16)
    target_s: int
    actual_s: int | None = Field(default=None)
    due_at: dt.datetime = Field(sa_type=UTCDateTime, nullable=False)
    met: bool
    recorded_at: dt.datetime = created_at_field()
