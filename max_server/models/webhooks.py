"""Outbound webhook subscriptions, one delivery per event and subscription, and every attempt."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from max_server.models.base import created_at_field, fk, id_field, json_field, time_field


class WebhookSubscription(SQLModel, table=True):
    __tablename__ = "webhook_subscriptions"

    id: int | None = id_field()
    url: str = Field(max_length=2048)
    events: list[Any] = json_field(list)  # event types, or ["*"]
    description: str | None = Field(default=None, max_length=200)
    secret: str = Field(max_length=128)
    previous_secret: str | None = Field(default=None, max_length=128)
    previous_secret_until: datetime | None = time_field()
    is_active: bool = Field(default=True)
    max_attempts: int = Field(default=8)
    timeout_s: int = Field(default=15)
    disabled_reason: str | None = Field(default=None)
    failing_since: datetime | None = time_field()
    created_by_id: int | None = fk("users.id", nullable=True, ondelete="SET NULL", index=False)
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()


class WebhookDelivery(SQLModel, table=True):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id", name="uq_webhook_deliveries_once"),
        CheckConstraint("state IN ('pending', 'succeeded', 'failed', 'cancelled')", name="state"),
        Index("ix_webhook_deliveries_subscription_state", "subscription_id", "state", "id"),
        Index(
            "ix_webhook_deliveries_failed",
            "subscription_id",
            "id",
            postgresql_where=text("state = 'failed'"),
            sqlite_where=text("state = 'failed'"),
        ),
    )

    id: int | None = id_field()
    subscription_id: int = fk("webhook_subscriptions.id", index=False)
    event_id: int = Field(sa_type=BigInteger, index=True)
    event_type: str = Field(max_length=64)
    message_id: str = Field(max_length=64)  # the webhook-id header, stable across retries
    body: str  # the exact bytes signed and sent, kept so retries send the same
    state: str = Field(default="pending", max_length=16)
    attempts: int = Field(default=0)
    next_attempt_at: datetime | None = time_field()
    last_status_code: int | None = Field(default=None)
    last_error: str | None = Field(default=None)
    created_at: datetime = created_at_field()
    finished_at: datetime | None = time_field()


class WebhookAttempt(SQLModel, table=True):
    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_created_at", "created_at"),)

    id: int | None = id_field()
    delivery_id: int = fk("webhook_deliveries.id")
    attempt: int
    status_code: int | None = Field(default=None)
    response_body: str | None = Field(default=None, max_length=1000)
    error: str | None = Field(default=None)
    duration_ms: int | None = Field(default=None)
    created_at: datetime = created_at_field()
