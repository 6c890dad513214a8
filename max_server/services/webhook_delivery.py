"""Outbound webhook delivery (DESIGN §6).

* Each sequenced event becomes one delivery per matching active subscription, in the sequencing
  transaction (the unique (subscription, event) settles any repeat), with its body encoded once:
  those exact bytes are signed and sent on every attempt.
* Each attempt is one job (``webhooks.deliver``). It POSTs through the address guard and then,
  in one transaction, logs the attempt, settles the delivery or queues the next attempt with its
  ``run_at`` (immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h): the schedule lives in the
  job table and survives restarts. A crash before that transaction reruns the same attempt.
* 2xx succeeds; 410 disables the subscription; 408, 429, 5xx, timeouts and network errors
  retry; redirects (never followed), other 4xx and refused addresses stop. A subscription
  failing for ``webhooks.disable_after`` is disabled and the admins are notified.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlmodel import Session, col, delete, select

from max_server import clock, metrics, netguard, wakeup
from max_server.db import Database, dialect_insert
from max_server.domain.durations import format_duration
from max_server.jobs import queue, registry
from max_server.models import Event, Job, WebhookAttempt, WebhookDelivery, WebhookSubscription
from max_server.models.base import UTCDateTime
from max_server.services import events, notifications
from max_server.services.webhook_sending import AttemptResult, Outgoing, load, post
from max_server.settings import Settings

log = logging.getLogger("max.webhooks")
JOB = "webhooks.deliver"
PING = "ping"
# Seconds to wait before attempt 2, 3, … (attempt 1 is immediate); the last repeats.
SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)
_D = WebhookDelivery.__table__  # type: ignore[attr-defined]
_S = WebhookSubscription.__table__  # type: ignore[attr-defined]
_A = WebhookAttempt.__table__  # type: ignore[attr-defined]
_J = Job.__table__  # type: ignore[attr-defined]


def delay_before(try_no: int) -> int:
    """Seconds between attempt ``try_no - 1`` and attempt ``try_no`` (2-based)."""
    return SCHEDULE[min(max(try_no - 2, 0), len(SCHEDULE) - 1)]


def matches(patterns: Sequence[Any], event_type: str) -> bool:
    for pattern in patterns:
        if pattern == "*" and event_type != PING:
            return True
        if pattern == event_type or (
            isinstance(pattern, str) and pattern.endswith(".*") and event_type.startswith(pattern[:-1])
        ):
            return True
    return False


def encode(event: Event) -> str:
    """The body: the event's envelope, compact JSON. Encoded once; these bytes are what is signed."""
    return json.dumps(events.envelope(event), ensure_ascii=False, separators=(",", ":"))


# Creating deliveries (the on_sequenced hook) ---------------------------------------------------
def create_deliveries(session: Session, batch: Sequence[Event]) -> None:
    subscriptions = list(
        session.exec(select(WebhookSubscription).where(col(WebhookSubscription.is_active).is_(True)))
    )
    if not subscriptions:
        return
    now = clock.now()
    rows: list[dict[str, Any]] = []
    for event in batch:
        if event.type == PING:
            target = str(event.data.get("subscription_id", ""))
            wanted = [s for s in subscriptions if str(s.id) == target]
        else:
            wanted = [s for s in subscriptions if matches(s.events, event.type)]
        if not wanted:
            continue
        body = encode(event)
        message_id = f"msg_{event.id}_{secrets.token_hex(5)}"  # no "." (Standard Webhooks)
        rows += [
            {
                "subscription_id": s.id,
                "event_id": event.id,
                "event_type": event.type,
                "message_id": message_id,
                "body": body,
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for s in wanted
        ]
    if not rows:
        return
    inserted = session.execute(
        dialect_insert(session, _D)
        .on_conflict_do_nothing(index_elements=["subscription_id", "event_id"])
        .returning(_D.c.id),
        rows,
    ).scalars()
    first_attempts = [{"delivery_id": delivery_id, "attempt": 1, "try": 1} for delivery_id in inserted]
    enqueue_many(session, first_attempts, now)


def enqueue_many(session: Session, payloads: list[dict[str, Any]], now: datetime) -> None:
    """``queue.enqueue`` for many first attempts in one statement (10,000 events are 10,000 jobs:
    one INSERT each would dominate the sequencing transaction). Same row as ``enqueue`` writes."""
    if not payloads:
        return
    max_attempts = registry.policy_for(JOB).max_attempts
    session.execute(
        insert(_J),
        [
            {
                "kind": JOB,
                "payload": payload,
                "state": "queued",
                "run_at": None,
                "attempts": 0,
                "max_attempts": max_attempts,
                "dedupe_key": None,
                "ordering_key": None,
                "created_at": now,
            }
            for payload in payloads
        ],
    )
    wakeup.request(session, "jobs")


def schedule(
    session: Session, delivery: WebhookDelivery, *, attempt: int, try_no: int, run_at: datetime | None
) -> None:
    """Queues attempt number ``attempt`` (counting every attempt ever; ``try_no`` counts within
    this round of the schedule)."""
    queue.enqueue(
        session, JOB, {"delivery_id": delivery.id, "attempt": attempt, "try": try_no}, run_at=run_at
    )


def cancel_pending(session: Session, subscription_id: int, now: datetime, reason: str) -> int:
    result = session.execute(
        update(_D)
        .where(_D.c.subscription_id == subscription_id, _D.c.state == "pending")
        .values(state="cancelled", finished_at=now, next_attempt_at=None, last_error=reason)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


# One attempt -----------------------------------------------------------------------------------
# The success path runs for every delivery: statements built once, executed on the connection.
_LOG_ATTEMPT = insert(_A)
_SUCCEEDED = (
    update(_D)
    .where(_D.c.id == bindparam("d_id"), _D.c.state == "pending", _D.c.attempts == bindparam("before"))
    .values(
        state="succeeded",
        attempts=bindparam("attempt_no"),
        finished_at=bindparam("now", type_=UTCDateTime()),
        next_attempt_at=None,
        last_status_code=bindparam("code"),
        last_error=None,
    )
)
_NOT_FAILING = update(_S).where(_S.c.id == bindparam("s_id")).values(failing_since=None)


def deliver(
    db: Database,
    settings: Settings,
    payload: dict[str, Any],
    resolver: netguard.Resolver = netguard.system_resolver,
) -> str:
    """The ``webhooks.deliver`` job: one attempt. Returns what happened (for logs and tests)."""
    delivery_id = int(payload["delivery_id"])
    attempt, try_no = int(payload.get("attempt", 1)), int(payload.get("try", 1))
    with db.session(write=False) as session:
        outgoing = load(session, delivery_id)
    if outgoing is None:
        return "gone"  # the subscription was deleted
    if outgoing.state != "pending" or outgoing.attempts + 1 != attempt:
        return "stale"  # settled meanwhile, or redelivered and sent by another job
    if not outgoing.is_active:
        with db.session() as session:
            session.execute(
                update(_D)
                .where(_D.c.id == delivery_id, _D.c.state == "pending")
                .values(state="cancelled", finished_at=clock.now(), next_attempt_at=None)
            )
            session.commit()
        return "cancelled"
    result = post(outgoing, clock.now(), settings, resolver)
    if result.outcome == "success":
        return record_success(db, outgoing, attempt, result)
    return record(db, settings, delivery_id, attempt, try_no, result)


def _attempt_row(delivery_id: int, attempt: int, result: AttemptResult, now: datetime) -> dict[str, Any]:
    return {
        "delivery_id": delivery_id,
        "attempt": attempt,
        "status_code": result.status_code,
        "response_body": result.response_body,
        "error": result.error,
        "duration_ms": result.duration_ms,
        "created_at": now,
    }


def record_success(db: Database, outgoing: Outgoing, attempt: int, result: AttemptResult) -> str:
    """The common case in one short transaction of prepared statements (no rows loaded)."""
    with db.session() as session:
        now = clock.now()
        connection = session.connection()
        connection.execute(_LOG_ATTEMPT, _attempt_row(outgoing.delivery_id, attempt, result, now))
        params = {
            "d_id": outgoing.delivery_id,
            "before": attempt - 1,
            "attempt_no": attempt,
            "now": now,
            "code": result.status_code,
        }
        settled = connection.execute(_SUCCEEDED, params).rowcount
        if settled and outgoing.failing_since is not None:
            connection.execute(_NOT_FAILING, {"s_id": outgoing.subscription_id})
        session.commit()
    metrics.DELIVERIES.labels("success").inc()
    return "success" if settled else "stale"


def record(
    db: Database, settings: Settings, delivery_id: int, attempt: int, try_no: int, result: AttemptResult
) -> str:
    """Logs a failed attempt and settles the delivery or queues the next attempt, in one
    transaction (the rows locked: a failure may disable the subscription)."""
    with db.session() as session:
        now = clock.now()
        delivery = session.get(WebhookDelivery, delivery_id, with_for_update=True)
        if delivery is None:
            return "gone"
        session.execute(insert(_A).values(**_attempt_row(delivery_id, attempt, result, now)))
        if delivery.state != "pending" or delivery.attempts + 1 != attempt:
            session.commit()  # a concurrent redelivery settled it: keep the log line only
            return "stale"
        subscription = session.get(WebhookSubscription, delivery.subscription_id, with_for_update=True)
        assert subscription is not None
        delivery.attempts = attempt
        delivery.last_status_code = result.status_code
        delivery.last_error = result.error or (
            None if result.outcome == "success" else f"HTTP {result.status_code}"
        )
        if result.outcome == "success":
            _finish(delivery, "succeeded", now)
            if subscription.failing_since is not None:
                subscription.failing_since = None
                session.add(subscription)
        else:
            _failed(session, settings, subscription, delivery, attempt, try_no, result, now)
        session.add(delivery)
        session.commit()
    metrics.DELIVERIES.labels(result.outcome).inc()
    return result.outcome


def _finish(delivery: WebhookDelivery, state: str, now: datetime) -> None:
    delivery.state, delivery.finished_at, delivery.next_attempt_at = state, now, None


def _failed(
    session: Session,
    settings: Settings,
    subscription: WebhookSubscription,
    delivery: WebhookDelivery,
    attempt: int,
    try_no: int,
    result: AttemptResult,
    now: datetime,
) -> None:
    if subscription.is_active:
        subscription.failing_since = subscription.failing_since or now
        failing_for = now - subscription.failing_since
        if result.outcome == "gone":
            disable(session, subscription, "the endpoint answered 410 Gone", now)
        elif failing_for >= timedelta(seconds=settings.webhooks.disable_after):
            since = subscription.failing_since.isoformat().replace("+00:00", "Z")
            limit = format_duration(settings.webhooks.disable_after)
            disable(session, subscription, f"every attempt has failed since {since} (over {limit})", now)
        session.add(subscription)
    if result.outcome == "retry" and try_no < subscription.max_attempts and subscription.is_active:
        delay = max(delay_before(try_no + 1), result.retry_after or 0)
        run_at = now + timedelta(seconds=delay)
        delivery.state, delivery.next_attempt_at = "pending", run_at
        schedule(session, delivery, attempt=attempt + 1, try_no=try_no + 1, run_at=run_at)
    else:
        _finish(delivery, "failed", now)


def disable(session: Session, subscription: WebhookSubscription, reason: str, now: datetime) -> None:
    """Disables the subscription, cancels what it still had pending, tells the admins."""
    subscription.is_active = False
    subscription.disabled_reason = reason
    subscription.updated_at = now
    session.add(subscription)
    session.flush()
    cancel_pending(session, subscription.id, now, "the subscription was disabled")  # type: ignore[arg-type]
    log.warning("webhook subscription %s disabled: %s", subscription.id, reason)
    notifications.notify(
        session,
        notifications.admins(session),
        "webhook.disabled",
        f"Webhook {subscription.url} was disabled: {reason}",
        {"subscription_id": str(subscription.id), "url": subscription.url, "reason": reason},
    )


# Retention -------------------------------------------------------------------------------------
def prune(session: Session, before: datetime, batch: int = 5000) -> int:
    """Deletes one batch of finished deliveries (with their attempts) older than ``before``."""
    victims = (
        select(WebhookDelivery.id)
        .where(col(WebhookDelivery.state) != "pending", col(WebhookDelivery.created_at) < before)
        .limit(batch)
    )
    ids = list(session.exec(victims))
    if not ids:
        return 0
    session.exec(delete(WebhookAttempt).where(col(WebhookAttempt.delivery_id).in_(ids)))
    session.exec(delete(WebhookDelivery).where(col(WebhookDelivery.id).in_(ids)))
    return len(ids)
