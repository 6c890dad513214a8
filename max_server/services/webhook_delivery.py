"""Outbound webhook delivery (DESIGN §6).

* Each sequenced event becomes one delivery per matching active subscription
  (``webhook_fanout``), its body encoded once: those exact bytes are signed and sent on every
  attempt.
* Each attempt is one job (``webhooks.deliver``). It POSTs through the address guard and then,
  in one transaction, logs the attempt, settles the delivery or queues the next attempt with its
  ``run_at`` (immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h): the schedule lives in the
  job table and survives restarts. A crash before that transaction reruns the same attempt.
* 2xx succeeds; 410 disables the subscription; 408, 429, 5xx, timeouts and network errors
  retry; redirects (never followed), other 4xx and refused addresses stop. A subscription
  failing for ``webhooks.disable_after`` is disabled and the admins are notified.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlmodel import Session, col, delete, select

from max_server import clock, metrics, netguard
from max_server.db import Database
from max_server.domain.durations import format_duration
from max_server.jobs import queue
from max_server.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from max_server.models.base import UTCDateTime
from max_server.services import notifications
from max_server.services.webhook_fanout import JOB, PING  # noqa: F401 (PING: webhooks.py uses it from here)
from max_server.services.webhook_sending import AttemptResult, Checks, Outgoing, load_many, post
from max_server.settings import Settings

log = logging.getLogger("max.webhooks")
# Seconds to wait before attempt 2, 3, … (attempt 1 is immediate); the last repeats.
SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)
_D = WebhookDelivery.__table__  # type: ignore[attr-defined]
_S = WebhookSubscription.__table__  # type: ignore[attr-defined]
_A = WebhookAttempt.__table__  # type: ignore[attr-defined]


def delay_before(try_no: int) -> int:
    """Seconds between attempt ``try_no - 1`` and attempt ``try_no`` (2-based)."""
    return SCHEDULE[min(max(try_no - 2, 0), len(SCHEDULE) - 1)]


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


# One attempt, or a batch of them -----------------------------------------------------------------
# The success path runs for every delivery: statements built once, executed on the connection.
_LOG_ATTEMPT = insert(_A)
_SUCCEEDED = (
    update(_D)
    .where(
        _D.c.id.in_(bindparam("d_ids", expanding=True)),
        _D.c.state == "pending",
        _D.c.attempts == bindparam("before"),
    )
    .values(
        state="succeeded",
        attempts=bindparam("attempt_no"),
        finished_at=bindparam("now", type_=UTCDateTime()),
        next_attempt_at=None,
        last_status_code=bindparam("code"),
        last_error=None,
    )
    .returning(_D.c.id)
)
_NOT_FAILING = (
    update(_S)
    .where(_S.c.id.in_(bindparam("s_ids", expanding=True)), _S.c.failing_since.is_not(None))
    .values(failing_since=None)
)
_CANCEL = (
    update(_D)
    .where(_D.c.id.in_(bindparam("d_ids", expanding=True)), _D.c.state == "pending")
    .values(state="cancelled", finished_at=bindparam("now", type_=UTCDateTime()), next_attempt_at=None)
)
Success = tuple[Outgoing, int, AttemptResult]  # what was sent, its attempt number, the answer


def deliver(
    db: Database,
    settings: Settings,
    payload: dict[str, Any],
    resolver: netguard.Resolver = netguard.system_resolver,
) -> str:
    """The ``webhooks.deliver`` job: one attempt. Returns what happened (for logs and tests)."""
    outcome = deliver_many(db, settings, [payload], resolver)[0]
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def deliver_many(
    db: Database,
    settings: Settings,
    payloads: Sequence[dict[str, Any]],
    resolver: netguard.Resolver = netguard.system_resolver,
) -> list[str | BaseException]:
    """Several ``webhooks.deliver`` jobs: one read for all, the POSTs one after another (the
    address guard asked once per URL), the successes recorded in one transaction and failures
    one by one with their schedule. Per payload, what happened, or the exception that should
    make that job retry."""
    wanted = [(int(p["delivery_id"]), int(p.get("attempt", 1)), int(p.get("try", 1))) for p in payloads]
    with db.session(write=False) as session:
        loaded = load_many(session, [delivery_id for delivery_id, _, _ in wanted])
    outcomes: list[str | BaseException] = ["stale"] * len(wanted)
    taken: set[tuple[int, int]] = set()  # a redelivered job in the same batch is not sent twice
    inactive: list[int] = []
    sent: list[tuple[int, Success]] = []
    failing: set[int] = {o.subscription_id for o in loaded.values() if o.failing_since is not None}
    checks: Checks = {}
    for index, (delivery_id, attempt, try_no) in enumerate(wanted):
        outgoing = loaded.get(delivery_id)
        if outgoing is None:
            outcomes[index] = "gone"  # the subscription was deleted
            continue
        if outgoing.state != "pending" or outgoing.attempts + 1 != attempt or (delivery_id, attempt) in taken:
            continue  # stale: settled meanwhile, or redelivered and sent by another job
        taken.add((delivery_id, attempt))
        if not outgoing.is_active:
            inactive.append(index)
            continue
        try:
            result = post(outgoing, clock.now(), settings, resolver, checks)
        except Exception as exc:  # unforeseen: this job retries by its policy, as alone it would
            outcomes[index] = exc
            continue
        if result.outcome == "success":
            sent.append((index, (outgoing, attempt, result)))
            continue
        failing.add(outgoing.subscription_id)
        try:
            outcomes[index] = record(db, settings, delivery_id, attempt, try_no, result)
        except Exception as exc:  # this job retries; the others' outcomes stand
            outcomes[index] = exc
    try:
        cancelled = [wanted[index][0] for index in inactive]
        settled = settle_batch(db, [success for _, success in sent], failing, cancelled)
    except Exception as exc:
        for index, _ in sent:
            outcomes[index] = exc
        for index in inactive:
            outcomes[index] = exc
        return outcomes
    for index, (outgoing, _, _) in sent:
        outcomes[index] = "success" if outgoing.delivery_id in settled else "stale"
    for index in inactive:
        outcomes[index] = "cancelled"
    return outcomes


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


def settle_batch(db: Database, sent: list[Success], failing: set[int], cancelled: list[int]) -> set[int]:
    """The common case, for a batch, in one short transaction of prepared statements (no rows
    loaded): the attempts logged, the deliveries settled (those still pending at the attempt
    sent; returns their ids), ``failing`` subscriptions that succeeded marked well again, and
    the ``cancelled`` deliveries of disabled subscriptions, still pending, stopped."""
    if not sent and not cancelled:
        return set()
    settled: set[int] = set()
    with db.session() as session:
        now = clock.now()
        connection = session.connection()
        if cancelled:
            connection.execute(_CANCEL, {"d_ids": cancelled, "now": now})
        if sent:
            connection.execute(_LOG_ATTEMPT, [_attempt_row(o.delivery_id, n, r, now) for o, n, r in sent])
        groups: dict[tuple[int, int | None], list[int]] = {}
        for outgoing, attempt, result in sent:
            groups.setdefault((attempt, result.status_code), []).append(outgoing.delivery_id)
        for (attempt, code), ids in groups.items():
            params = {"d_ids": ids, "before": attempt - 1, "attempt_no": attempt, "now": now, "code": code}
            settled.update(connection.execute(_SUCCEEDED, params).scalars())
        well = sorted({o.subscription_id for o, _, _ in sent if o.delivery_id in settled} & failing)
        if well:
            connection.execute(_NOT_FAILING, {"s_ids": well})
        session.commit()
    metrics.DELIVERIES.labels("success").inc(len(sent))
    return settled


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
