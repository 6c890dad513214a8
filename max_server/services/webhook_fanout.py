"""Creating outbound webhook deliveries (DESIGN §6): the sequencer's hook turns each sequenced
event into one delivery per matching active subscription, in the sequencing transaction (the
unique (subscription, event) settles any repeat), with its body encoded once (those exact bytes
are signed and sent on every attempt), and queues each delivery's first attempt as a job."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy import select as sa_select
from sqlmodel import Session

from max_server import clock, wakeup
from max_server.db import dialect_insert, is_postgres
from max_server.jobs import registry
from max_server.models import Event, Job, WebhookDelivery, WebhookSubscription
from max_server.services import events

JOB = "webhooks.deliver"
PING = "ping"
_D = WebhookDelivery.__table__  # type: ignore[attr-defined]
_S = WebhookSubscription.__table__  # type: ignore[attr-defined]
_J = Job.__table__  # type: ignore[attr-defined]
_ACTIVE = sa_select(_S.c.id, _S.c.events).where(_S.c.is_active.is_(True))


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


def create_deliveries(session: Session, batch: Sequence[Event]) -> None:
    subscriptions = session.execute(_ACTIVE).all()
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
            }
            for s in wanted
        ]
    if not rows:
        return
    if is_postgres(session):
        _create_on_postgres(session, rows, now)
        return
    constant = {"state": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now}
    inserted = session.execute(
        dialect_insert(session, _D)
        .on_conflict_do_nothing(index_elements=["subscription_id", "event_id"])
        .returning(_D.c.id),
        [{**row, **constant} for row in rows],
    ).scalars()
    first_attempts = [{"delivery_id": delivery_id, "attempt": 1, "try": 1} for delivery_id in inserted]
    enqueue_many(session, first_attempts, now)


# PostgreSQL: the columns travel as five arrays in binary form (``%b``: no quoting to do on
# either side) and the first attempts are queued by the same statement. A multi-row VALUES list
# (SQLAlchemy's insertmanyvalues) of 1,000 events is 9,000 placeholders that psycopg re-parses
# in Python for every batch, and text-format arrays are escaped element by element: either one
# took most of the sequencer's time.
_CREATE_ON_POSTGRES = """
    WITH created AS (
        INSERT INTO webhook_deliveries
            (subscription_id, event_id, event_type, message_id, body, state, attempts,
             next_attempt_at, created_at)
        SELECT s, e, t, m, b, 'pending', 0, %(now)s, %(now)s
        FROM unnest(%(s)b::bigint[], %(e)b::bigint[], %(t)b::text[], %(m)b::text[], %(b)b::text[])
            AS u(s, e, t, m, b)
        ON CONFLICT (subscription_id, event_id) DO NOTHING
        RETURNING id
    )
    INSERT INTO jobs (kind, payload, state, attempts, max_attempts, created_at)
    SELECT %(kind)s, jsonb_build_object('delivery_id', id, 'attempt', 1, 'try', 1), 'queued', 0,
           %(max_attempts)s, %(now)s
    FROM created
"""


def _create_on_postgres(session: Session, rows: list[dict[str, Any]], now: datetime) -> None:
    params = {
        "s": [row["subscription_id"] for row in rows],
        "e": [row["event_id"] for row in rows],
        "t": [row["event_type"] for row in rows],
        "m": [row["message_id"] for row in rows],
        "b": [row["body"] for row in rows],
        "now": now,
        "kind": JOB,
        "max_attempts": registry.policy_for(JOB).max_attempts,
    }
    if session.connection().exec_driver_sql(_CREATE_ON_POSTGRES, params).rowcount:
        wakeup.request(session, "jobs")


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
