"""Conversations and their messages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from max_server.models.base import (
    JsonType,
    created_at_field,
    fk,
    id_field,
    json_field,
    time_field,
)

CONVERSATION_STATUSES = ("queued", "assigned", "closed")
PRIORITIES = ("low", "normal", "high", "urgent")
CLOSE_REASONS = ("resolved", "spam", "duplicate", "no_response", "other")
DELIVERY_STATUSES = ("pending", "sending", "sent", "delivered", "read", "played", "failed", "unknown")


class Conversation(SQLModel, table=True):
    __tablename__ = "conversations"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'assigned', 'closed')", name="status"),
        CheckConstraint("priority IN ('low', 'normal', 'high', 'urgent')", name="priority"),
        # At most one open conversation per customer and channel account, on both databases.
        Index(
            "uq_conversations_one_open",
            "customer_id",
            "channel_account_id",
            unique=True,
            postgresql_where=text("status <> 'closed'"),
            sqlite_where=text("status <> 'closed'"),
        ),
        Index("ix_conversations_status_team", "status", "team_id"),
        Index("ix_conversations_assignee_status", "assignee_id", "status"),
        # The customer context: a customer's latest conversations without sorting their history.
        Index("ix_conversations_customer_created", "customer_id", "created_at", "id"),
        Index(
            "ix_conversations_sla_next_check",
            "sla_next_check_at",
            postgresql_where=text("sla_next_check_at IS NOT NULL"),
            sqlite_where=text("sla_next_check_at IS NOT NULL"),
        ),
    )

    id: int | None = id_field()
    number: int = Field(unique=True)
    customer_id: int = fk("customers.id", ondelete="RESTRICT")
    channel_account_id: int = fk("channel_accounts.id", ondelete="RESTRICT")
    # The identity the customer last wrote from: replies go there.
    identity_id: int | None = fk("customer_identities.id", nullable=True, ondelete="SET NULL", index=False)
    team_id: int | None = fk("teams.id", nullable=True, ondelete="SET NULL", index=False)
    status: str = Field(default="queued", max_length=16)
    priority: str = Field(default="normal", max_length=16)
    assignee_id: int | None = fk("users.id", nullable=True, ondelete="SET NULL", index=False)
    subject: str | None = Field(default=None, max_length=300)
    required_skills: list[Any] = json_field(list)
    first_message_at: datetime | None = time_field()
    first_response_at: datetime | None = time_field()
    last_customer_message_at: datetime | None = time_field()
    last_message_at: datetime | None = time_field()
    last_message_preview: str | None = Field(default=None, max_length=200)
    window_closed_at: datetime | None = time_field()
    assigned_at: datetime | None = time_field()
    queued_at: datetime | None = time_field()  # when it last entered the queue (skills relax from here)
    closed_at: datetime | None = time_field()
    close_reason: str | None = Field(default=None, max_length=32)
    cycle: int = Field(default=1)
    cycle_started_at: datetime | None = time_field()
    frt_due_at: datetime | None = time_field()
    resolution_due_at: datetime | None = time_field()
    sla_next_check_at: datetime | None = time_field()
    frt_warned_at: datetime | None = time_field()
    resolution_warned_at: datetime | None = time_field()
    escalated_at: datetime | None = time_field()
    after_hours: bool = Field(default=False)
    rate_limited: bool = Field(default=False)
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()


class Message(SQLModel, table=True):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("channel", "channel_message_id", name="uq_messages_channel_message"),
        CheckConstraint("direction IN ('inbound', 'outbound')", name="direction"),
        CheckConstraint("sender_type IN ('customer', 'agent', 'system')", name="sender_type"),
        Index("ix_messages_conversation_id_id", "conversation_id", "id"),
    )

    id: int | None = id_field()
    conversation_id: int = fk("conversations.id", index=False)
    direction: str = Field(max_length=8)
    sender_type: str = Field(max_length=16)
    sender_user_id: int | None = fk("users.id", nullable=True, ondelete="SET NULL", index=False)
    channel: str = Field(max_length=16)
    channel_message_id: str | None = Field(default=None, max_length=255)
    type: str = Field(default="text", max_length=64)
    content_text: str | None = Field(default=None)
    payload: dict[str, Any] = json_field(dict)
    customer_time: datetime | None = time_field()
    received_at: datetime = created_at_field()
    delivery_status: str = Field(default="pending", max_length=16)
    delivery_status_at: datetime | None = time_field()
    error: dict[str, Any] | None = Field(default=None, sa_type=JsonType, nullable=True)
    flags: list[Any] = json_field(list)
    reply_to_id: int | None = fk("messages.id", nullable=True, ondelete="SET NULL", index=False)
    created_at: datetime = created_at_field()
