"""Outbound webhook subscriptions (admins): create with a generated ``whsec_`` secret shown
once, list without secrets, change, enable/disable, rotate the secret (the old one keeps signing
for 24 hours), ping, and read or redeliver deliveries. Delivery itself is in ``webhook_delivery``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from sqlmodel import Session, col, select

from max_server import clock, netguard
from max_server.access import Actor
from max_server.domain.signatures import new_secret
from max_server.errors import Conflict, Forbidden, NotFound, Unprocessable
from max_server.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from max_server.schemas import (
    WebhookAttemptPublic,
    WebhookDeliveryPublic,
    WebhookPing,
    WebhookSubscriptionCreate,
    WebhookSubscriptionCreated,
    WebhookSubscriptionPublic,
    WebhookSubscriptionUpdate,
)
from max_server.services import audit, events
from max_server.services.pagination import clamp_limit
from max_server.services.webhook_delivery import PING, cancel_pending, schedule
from max_server.settings import Settings

ROTATION_OVERLAP = timedelta(hours=24)
# Every event type a service emits (alike on the websocket and in webhooks): DESIGN §7's list
# plus ``customer.tagged`` and ``customer.erased`` (docs/templates-webhooks.md). ``ping`` is not
# here: it goes only to the subscription being tested, whatever it subscribes to.
# tests/webhooks/test_event_types.py checks that every emitted type is listed.
EVENT_TYPES = (
    "conversation.created",
    "conversation.updated",
    "conversation.assigned",
    "conversation.transferred",
    "conversation.escalated",
    "conversation.closed",
    "conversation.reopened",
    "message.created",
    "message.status_updated",
    "sla.warning",
    "sla.violated",
    "customer.linked",
    "customer.unlinked",
    "customer.tagged",
    "customer.erased",
    "customer.rate_limited",
    "template.status_updated",
    "media.stored",
    "media.failed",
    "notification.created",
    "agent.presence_changed",
)
FAMILIES = tuple(sorted({t.split(".", 1)[0] for t in EVENT_TYPES}))


# Checks ----------------------------------------------------------------------------------------
def check_url(url: str, settings: Settings, resolver: netguard.Resolver = netguard.system_resolver) -> str:
    """The address guard at subscription time (every attempt checks again)."""
    try:
        netguard.check(url, allow_private=settings.webhooks.allow_private_networks, resolver=resolver)
    except netguard.AddressRefused as exc:
        raise Unprocessable(f"the webhook URL is refused: {exc}", code="webhook_url_refused") from None
    return url


def check_events(patterns: Iterable[str]) -> list[str]:
    """Known event types, ``family.*`` (e.g. ``conversation.*``) or ``*`` alone."""
    wanted = list(dict.fromkeys(p.strip() for p in patterns if p.strip()))
    if not wanted:
        raise Unprocessable("name at least one event type, or *", code="unknown_event_type")
    if "*" in wanted:
        return ["*"]
    unknown = [p for p in wanted if p not in EVENT_TYPES and not (p.endswith(".*") and p[:-2] in FAMILIES)]
    if unknown:
        raise Unprocessable(
            f"unknown event type(s): {', '.join(unknown)}",
            code="unknown_event_type",
            details={"known": list(EVENT_TYPES), "families": [f"{f}.*" for f in FAMILIES]},
        )
    return wanted


def _admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise Forbidden("only admins manage webhooks", code="insufficient_role")


# Subscriptions ---------------------------------------------------------------------------------
def present(row: WebhookSubscription) -> WebhookSubscriptionPublic:
    return WebhookSubscriptionPublic.model_validate(row)


def create(
    session: Session,
    actor: Actor,
    settings: Settings,
    body: WebhookSubscriptionCreate,
    resolver: netguard.Resolver = netguard.system_resolver,
) -> WebhookSubscriptionCreated:
    _admin(actor)
    url = check_url(body.url, settings, resolver)
    now = clock.now()
    secret = new_secret()
    row = WebhookSubscription(
        url=url,
        events=check_events(body.events),
        description=body.description,
        secret=secret,
        max_attempts=body.max_attempts or settings.webhooks.max_attempts,
        timeout_s=body.timeout_s or settings.webhooks.timeout,
        created_by_id=actor.user_id,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    audit.record(session, actor, "webhook.created", "webhook_subscription", row.id, {"url": url})
    session.commit()
    return WebhookSubscriptionCreated(subscription=present(row), secret=secret)


def list_subscriptions(
    session: Session, *, after_id: int | None = None, limit: int | None = None
) -> tuple[list[WebhookSubscription], int | None]:
    size = clamp_limit(limit)
    query = select(WebhookSubscription)
    if after_id is not None:
        query = query.where(col(WebhookSubscription.id) > after_id)
    rows = list(session.exec(query.order_by(col(WebhookSubscription.id)).limit(size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    return rows, (rows[-1].id if more and rows else None)


def get(session: Session, subscription_id: int, *, lock: bool = False) -> WebhookSubscription:
    row = session.get(WebhookSubscription, subscription_id, with_for_update=lock)
    if row is None:
        raise NotFound(f"webhook subscription {subscription_id} not found", code="webhook_not_found")
    return row


def update(
    session: Session,
    actor: Actor,
    settings: Settings,
    subscription_id: int,
    body: WebhookSubscriptionUpdate,
    resolver: netguard.Resolver = netguard.system_resolver,
) -> WebhookSubscription:
    _admin(actor)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if "url" in changes:  # resolved before the row is locked (DNS may be slow)
        check_url(changes["url"], settings, resolver)
    if "events" in changes:
        changes["events"] = check_events(changes["events"])
    row = get(session, subscription_id, lock=True)
    for key in ("url", "events"):
        if key in changes:
            setattr(row, key, changes[key])
    for key in ("description", "max_attempts", "timeout_s"):
        if key in changes:
            setattr(row, key, changes[key])
    row.updated_at = clock.now()
    session.add(row)
    audit.record(session, actor, "webhook.updated", "webhook_subscription", row.id, changes)
    session.commit()
    return row


def set_active(
    session: Session, actor: Actor, subscription_id: int, active: bool, reason: str | None = None
) -> WebhookSubscription:
    """Enabling clears the failure record; disabling cancels the pending deliveries."""
    _admin(actor)
    row = get(session, subscription_id, lock=True)
    now = clock.now()
    if active:
        row.is_active, row.disabled_reason, row.failing_since = True, None, None
    elif row.is_active:
        row.is_active = False
        row.disabled_reason = reason or f"disabled by {actor.label}"
        cancel_pending(session, subscription_id, now, "the subscription was disabled")
    row.updated_at = now
    session.add(row)
    action = "webhook.enabled" if active else "webhook.disabled"
    audit.record(session, actor, action, "webhook_subscription", row.id, {"reason": reason})
    session.commit()
    return row


def remove(session: Session, actor: Actor, subscription_id: int) -> None:
    """Deletes the subscription with its deliveries and attempts; queued attempts find nothing."""
    _admin(actor)
    row = get(session, subscription_id, lock=True)
    audit.record(session, actor, "webhook.deleted", "webhook_subscription", row.id, {"url": row.url})
    session.delete(row)
    session.commit()


def rotate_secret(session: Session, actor: Actor, subscription_id: int) -> WebhookSubscriptionCreated:
    """A new secret, shown once; the old one keeps signing (a second ``v1,`` signature) for 24 h."""
    _admin(actor)
    row = get(session, subscription_id, lock=True)
    now = clock.now()
    secret = new_secret()
    row.previous_secret, row.previous_secret_until = row.secret, now + ROTATION_OVERLAP
    row.secret = secret
    row.updated_at = now
    session.add(row)
    audit.record(session, actor, "webhook.secret_rotated", "webhook_subscription", row.id, {})
    session.commit()
    return WebhookSubscriptionCreated(subscription=present(row), secret=secret)


def ping(session: Session, actor: Actor, subscription_id: int) -> WebhookPing:
    """Writes a ``ping`` event that is delivered to this subscription only."""
    _admin(actor)
    row = get(session, subscription_id)
    if not row.is_active:
        raise Conflict("the subscription is disabled; enable it first", code="webhook_disabled")
    event = events.emit(
        session,
        PING,
        {"subscription_id": str(row.id), "url": row.url, "message": "a test event from MAX"},
        to=events.audience(users=[actor.user_id]),
    )
    session.flush()
    audit.record(session, actor, "webhook.pinged", "webhook_subscription", row.id, {"event_id": event.id})
    session.commit()
    return WebhookPing(subscription_id=str(row.id), event_id=str(event.id))


# Deliveries ------------------------------------------------------------------------------------
def present_delivery(
    row: WebhookDelivery, attempts: list[WebhookAttempt] | None = None
) -> WebhookDeliveryPublic:
    log = [WebhookAttemptPublic.model_validate(a) for a in attempts] if attempts is not None else None
    return WebhookDeliveryPublic.model_validate(
        {**row.model_dump(), "webhook_id": row.message_id, "attempt_log": log}
    )


def list_deliveries(
    session: Session,
    subscription_id: int,
    *,
    state: str | None = None,
    event_id: int | None = None,
    before_id: int | None = None,
    limit: int | None = None,
) -> tuple[list[WebhookDelivery], int | None]:
    """Newest first."""
    get(session, subscription_id)
    size = clamp_limit(limit)
    query = select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id)
    if state:
        query = query.where(WebhookDelivery.state == state)
    if event_id is not None:
        query = query.where(WebhookDelivery.event_id == event_id)
    if before_id is not None:
        query = query.where(col(WebhookDelivery.id) < before_id)
    rows = list(session.exec(query.order_by(col(WebhookDelivery.id).desc()).limit(size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    return rows, (rows[-1].id if more and rows else None)


def get_delivery(session: Session, delivery_id: int) -> tuple[WebhookDelivery, list[WebhookAttempt]]:
    row = session.get(WebhookDelivery, delivery_id)
    if row is None:
        raise NotFound(f"webhook delivery {delivery_id} not found", code="delivery_not_found")
    attempts = list(
        session.exec(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery_id)
            .order_by(col(WebhookAttempt.id))
        )
    )
    return row, attempts


def redeliver(session: Session, actor: Actor, delivery_id: int) -> WebhookDelivery:
    """Sends the same bytes again (same ``webhook-id``), now, with a fresh retry schedule."""
    _admin(actor)
    row = session.get(WebhookDelivery, delivery_id, with_for_update=True)
    if row is None:
        raise NotFound(f"webhook delivery {delivery_id} not found", code="delivery_not_found")
    subscription = get(session, row.subscription_id)
    if not subscription.is_active:
        raise Conflict("the subscription is disabled; enable it first", code="webhook_disabled")
    now = clock.now()
    row.state, row.finished_at, row.next_attempt_at = "pending", None, now
    session.add(row)
    schedule(session, row, attempt=row.attempts + 1, try_no=1, run_at=None)
    audit.record(session, actor, "webhook.redelivered", "webhook_delivery", row.id, {})
    session.commit()
    return row
