"""Wire models of outbound webhook subscriptions, their deliveries and attempts."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from max_server.schemas.core import Id, Input, Wire

DeliveryState = Literal["pending", "succeeded", "failed", "cancelled"]


class WebhookSubscriptionCreate(Input):
    url: str = Field(min_length=1, max_length=2048)
    events: list[str] = Field(min_length=1, description='event types, "conversation.*" or ["*"]')
    description: str | None = Field(None, max_length=200)
    max_attempts: int | None = Field(None, ge=1, le=20)
    timeout_s: int | None = Field(None, ge=1, le=60)


class WebhookSubscriptionUpdate(Input):
    url: str | None = Field(None, min_length=1, max_length=2048)
    events: list[str] | None = Field(None, min_length=1)
    description: str | None = Field(None, max_length=200)
    max_attempts: int | None = Field(None, ge=1, le=20)
    timeout_s: int | None = Field(None, ge=1, le=60)


class WebhookSubscriptionPublic(Wire):
    """A subscription as shown after creation: never its secret."""

    id: Id
    url: str
    events: list[str]
    description: str | None = None
    is_active: bool
    max_attempts: int
    timeout_s: int
    disabled_reason: str | None = None
    failing_since: datetime | None = None
    previous_secret_until: datetime | None = None  # while set, the old secret signs too
    created_at: datetime
    updated_at: datetime


class WebhookSubscriptionCreated(Wire):
    """The secret is shown here once (and on rotation), never again."""

    subscription: WebhookSubscriptionPublic
    secret: str


class WebhookSubscriptionList(Wire):
    subscriptions: list[WebhookSubscriptionPublic]
    next_cursor: str | None = None


class WebhookDisable(Input):
    reason: str | None = Field(None, max_length=200)


class WebhookAttemptPublic(Wire):
    attempt: int
    status_code: int | None = None
    response_body: str | None = None
    error: str | None = None
    duration_ms: int | None = None
    created_at: datetime


class WebhookDeliveryPublic(Wire):
    id: Id
    subscription_id: Id
    event_id: Id
    event_type: str
    webhook_id: str  # the webhook-id header, the same on every attempt
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    created_at: datetime
    finished_at: datetime | None = None
    attempt_log: list[WebhookAttemptPublic] | None = None


class WebhookDeliveryList(Wire):
    deliveries: list[WebhookDeliveryPublic]
    next_cursor: str | None = None


class WebhookPing(Wire):
    """A ``ping`` event was written; its delivery to the subscription follows."""

    subscription_id: Id
    event_id: Id
    type: str = "ping"
