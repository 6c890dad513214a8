"""Triage rules, routing decisions, and customer rate limits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Index, text
from sqlmodel import Field, SQLModel

from max_server.models.base import UTCDateTime, created_at_field, fk, id_field, json_field, time_field


class RoutingRule(SQLModel, table=True):
    """Matches a conversation's first message; the first matching rule (by position) applies."""

    __tablename__ = "routing_rules"
    __table_args__ = (
        CheckConstraint("match_type IN ('keywords', 'regex')", name="match_type"),
        CheckConstraint(
            "set_priority IS NULL OR set_priority IN ('low', 'normal', 'high', 'urgent')", name="set_priority"
        ),
    )

    id: int | None = id_field()
    position: int = Field(index=True)
    name: str = Field(max_length=200)
    match_type: str = Field(default="keywords", max_length=16)
    pattern: str = Field(max_length=1000)  # keywords (comma separated) or a regular expression
    channel_account_id: int | None = fk("channel_accounts.id", nullable=True, index=False)
    set_team_id: int | None = fk("teams.id", nullable=True, ondelete="SET NULL", index=False)
    set_priority: str | None = Field(default=None, max_length=16)
    required_skills: list[Any] = json_field(list)  # [{"skill": "billing", "min": 3}]
    is_active: bool = Field(default=True)
    created_at: datetime = created_at_field()


class RoutingDecision(SQLModel, table=True):
    """Why a conversation went where it went: candidates, scores, the winner and the reason."""

    __tablename__ = "routing_decisions"
    __table_args__ = (Index("ix_routing_decisions_conversation", "conversation_id", "id"),)

    id: int | None = id_field()
    conversation_id: int = fk("conversations.id", index=False)
    strategy: str = Field(max_length=32)  # capacity | skills | skills_relaxed | none
    rule_id: int | None = fk("routing_rules.id", nullable=True, ondelete="SET NULL", index=False)
    team_id: int | None = fk("teams.id", nullable=True, ondelete="SET NULL", index=False)
    winner_id: int | None = fk("users.id", nullable=True, ondelete="SET NULL", index=False)
    candidates: list[Any] = json_field(list)
    reason: str = Field(default="")
    created_at: datetime = created_at_field()


class RateEvent(SQLModel, table=True):
    """One counted message or new conversation of a customer, at the customer's time (an exact
    sliding window counts these)."""

    __tablename__ = "rate_events"
    __table_args__ = (
        CheckConstraint("kind IN ('message', 'conversation')", name="kind"),
        Index("ix_rate_events_customer_kind_at", "customer_id", "kind", "at"),
        Index("ix_rate_events_created_at", "created_at"),
    )

    id: int | None = id_field()
    customer_id: int = fk("customers.id", index=False)
    kind: str = Field(max_length=16)
    at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    created_at: datetime = created_at_field()


class CustomerBlock(SQLModel, table=True):
    """A customer over a rate limit: their messages written (customer time) from ``starts_at``
    until ``until`` are stored, flagged and not routed. ``kind = "flag_only"`` (when
    ``rate_limits.block_minutes`` is 0) holds nothing by itself: it spans the window that tripped
    so supervisors are notified once per window."""

    __tablename__ = "customer_blocks"
    __table_args__ = (
        Index(
            "ix_customer_blocks_active",
            "customer_id",
            "until",
            postgresql_where=text("lifted_at IS NULL"),
            sqlite_where=text("lifted_at IS NULL"),
        ),
    )

    id: int | None = id_field()
    customer_id: int = fk("customers.id", index=False)
    # The conversation whose message tripped the limit (the notification opens it).
    conversation_id: int | None = fk("conversations.id", nullable=True, ondelete="SET NULL", index=False)
    kind: str = Field(max_length=16)  # messages (a block) | flag_only
    # Customer time of the first held message: a message written before it is not held by it.
    starts_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    until: datetime = Field(sa_type=UTCDateTime, nullable=False)
    reason: str = Field(default="")
    notified: bool = Field(default=False)
    held_count: int = Field(default=0)
    created_at: datetime = created_at_field()
    lifted_at: datetime | None = time_field()
    lifted_by_id: int | None = fk("users.id", nullable=True, ondelete="SET NULL", index=False)
