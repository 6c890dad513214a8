"""Outbound webhook subscriptions and their deliveries (admins). The inbound channel webhooks
are in ``webhooks.py``."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status

from max_server.api.deps import AdminActor, SessionDep, SettingsDep
from max_server.schemas import (
    WebhookDeliveryList,
    WebhookDeliveryPublic,
    WebhookDisable,
    WebhookPing,
    WebhookSubscriptionCreate,
    WebhookSubscriptionCreated,
    WebhookSubscriptionList,
    WebhookSubscriptionPublic,
    WebhookSubscriptionUpdate,
)
from max_server.services import webhooks
from max_server.services.pagination import cursor_int, encode_cursor

router = APIRouter(prefix="/api/v1", tags=["webhooks"])
Limit = Annotated[int, Query(ge=1, le=500)]


@router.post("/webhooks", response_model=WebhookSubscriptionCreated, status_code=status.HTTP_201_CREATED)
def create_subscription(
    session: SessionDep, settings: SettingsDep, actor: AdminActor, body: WebhookSubscriptionCreate
) -> WebhookSubscriptionCreated:
    """Subscribes a URL to events (`["*"]` for all). The answer holds the `whsec_` secret, shown once."""
    return webhooks.create(session, actor, settings, body)


@router.get("/webhooks", response_model=WebhookSubscriptionList)
def list_subscriptions(
    session: SessionDep, actor: AdminActor, cursor: str | None = None, limit: Limit = 50
) -> WebhookSubscriptionList:
    """Subscriptions, without their secrets."""
    rows, next_id = webhooks.list_subscriptions(session, after_id=cursor_int(cursor), limit=limit)
    return WebhookSubscriptionList(
        subscriptions=[webhooks.present(r) for r in rows],
        next_cursor=encode_cursor(id=next_id) if next_id else None,
    )


@router.get("/webhooks/{subscription_id}", response_model=WebhookSubscriptionPublic)
def read_subscription(
    session: SessionDep, actor: AdminActor, subscription_id: int
) -> WebhookSubscriptionPublic:
    return webhooks.present(webhooks.get(session, subscription_id))


@router.patch("/webhooks/{subscription_id}", response_model=WebhookSubscriptionPublic)
def update_subscription(
    session: SessionDep,
    settings: SettingsDep,
    actor: AdminActor,
    subscription_id: int,
    body: WebhookSubscriptionUpdate,
) -> WebhookSubscriptionPublic:
    return webhooks.present(webhooks.update(session, actor, settings, subscription_id, body))


@router.delete("/webhooks/{subscription_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_subscription(session: SessionDep, actor: AdminActor, subscription_id: int) -> Response:
    """Deletes the subscription, its deliveries and their attempts."""
    webhooks.remove(session, actor, subscription_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/webhooks/{subscription_id}/enable", response_model=WebhookSubscriptionPublic)
def enable_subscription(
    session: SessionDep, actor: AdminActor, subscription_id: int
) -> WebhookSubscriptionPublic:
    return webhooks.present(webhooks.set_active(session, actor, subscription_id, True))


@router.post("/webhooks/{subscription_id}/disable", response_model=WebhookSubscriptionPublic)
def disable_subscription(
    session: SessionDep, actor: AdminActor, subscription_id: int, body: WebhookDisable | None = None
) -> WebhookSubscriptionPublic:
    """Stops deliveries; pending ones are cancelled (redeliver them after enabling)."""
    reason = body.reason if body else None
    return webhooks.present(webhooks.set_active(session, actor, subscription_id, False, reason))


@router.post("/webhooks/{subscription_id}/rotate-secret", response_model=WebhookSubscriptionCreated)
def rotate_secret(session: SessionDep, actor: AdminActor, subscription_id: int) -> WebhookSubscriptionCreated:
    """A new secret, shown once; the previous one also signs for 24 hours."""
    return webhooks.rotate_secret(session, actor, subscription_id)


@router.post(
    "/webhooks/{subscription_id}/test", response_model=WebhookPing, status_code=status.HTTP_202_ACCEPTED
)
def test_subscription(session: SessionDep, actor: AdminActor, subscription_id: int) -> WebhookPing:
    """Sends a `ping` event to this subscription only; follow it in its deliveries."""
    return webhooks.ping(session, actor, subscription_id)


@router.get("/webhooks/{subscription_id}/deliveries", response_model=WebhookDeliveryList)
def list_deliveries(
    session: SessionDep,
    actor: AdminActor,
    subscription_id: int,
    state: Literal["pending", "succeeded", "failed", "cancelled"] | None = None,
    event_id: int | None = None,
    cursor: str | None = None,
    limit: Limit = 50,
) -> WebhookDeliveryList:
    """Newest first; `state=failed` for the failed ones."""
    rows, next_id = webhooks.list_deliveries(
        session, subscription_id, state=state, event_id=event_id, before_id=cursor_int(cursor), limit=limit
    )
    return WebhookDeliveryList(
        deliveries=[webhooks.present_delivery(r) for r in rows],
        next_cursor=encode_cursor(id=next_id) if next_id else None,
    )


@router.get("/webhook-deliveries/{delivery_id}", response_model=WebhookDeliveryPublic)
def read_delivery(session: SessionDep, actor: AdminActor, delivery_id: int) -> WebhookDeliveryPublic:
    """One delivery with every attempt (status code, start of the answer, error, duration)."""
    row, attempts = webhooks.get_delivery(session, delivery_id)
    return webhooks.present_delivery(row, attempts)


@router.post("/webhook-deliveries/{delivery_id}/redeliver", response_model=WebhookDeliveryPublic)
def redeliver(session: SessionDep, actor: AdminActor, delivery_id: int) -> WebhookDeliveryPublic:
    """Sends the same bytes again (same `webhook-id`) now, with a fresh retry schedule."""
    return webhooks.present_delivery(webhooks.redeliver(session, actor, delivery_id))
