"""What must hold after the cluster's load, read from the database, the bucket, the sandbox and
the observers. Each check asserts and returns the figures it counted (for the report)."""

from __future__ import annotations

import hashlib
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, text
from sqlmodel import col, select
from standardwebhooks.webhooks import Webhook

from max_server.db import Database
from max_server.models import (
    Conversation,
    CustomerIdentity,
    Event,
    Job,
    MediaFile,
    Message,
    PeriodicTick,
    User,
    WebhookDelivery,
)
from max_server.services import events as event_service
from max_server.services import users as user_service
from tests.reliability.load import Planned
from tests.reliability.observers import EventFollower, HookSink

CHUNK = 500


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


def db_now(db: Database) -> datetime:
    with db.session(write=False) as session:
        value: datetime = session.execute(text("SELECT clock_timestamp()")).scalar_one()
    return value.astimezone(UTC)


# Waiting ----------------------------------------------------------------------------------------
def unsettled(db: Database, periodic_kinds: set[str]) -> dict[str, int]:
    """Work still to do: unsequenced events, pending deliveries and media, jobs due or running
    (a periodic job enqueued in the last few seconds does not count: ticks never stop)."""
    with db.session(write=False) as session:
        now = session.execute(text("SELECT clock_timestamp()")).scalar_one()
        jobs = session.exec(
            select(Job.kind, Job.created_at).where(col(Job.state).in_(("queued", "running")))
        ).all()
        busy = [
            kind
            for kind, created in jobs
            if kind not in periodic_kinds or created < now - timedelta(seconds=20)
        ]
        return {
            "jobs": len(busy),
            "unsequenced": session.exec(
                select(func.count()).select_from(Event).where(col(Event.seq).is_(None))
            ).one(),
            "deliveries": session.exec(
                select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.state == "pending")
            ).one(),
            "media": session.exec(
                select(func.count()).select_from(MediaFile).where(MediaFile.status == "pending")
            ).one(),
        }


def wait_settled(db: Database, periodic_kinds: set[str], timeout: float) -> float:
    started = time.monotonic()
    left: dict[str, int] = {}
    while time.monotonic() - started < timeout:
        left = unsettled(db, periodic_kinds)
        if not any(left.values()):
            return time.monotonic() - started
        time.sleep(0.5)
    raise AssertionError(f"the cluster did not settle within {timeout}s: {left}")


def latest_seq(db: Database) -> int:
    with db.session(write=False) as session:
        return event_service.latest_seq(session)


# Messages ---------------------------------------------------------------------------------------
def messages_stored_once(db: Database, planned: Sequence[Planned]) -> dict[str, int]:
    """Every planned message is stored exactly once, with its text; one conversation per
    customer; a conversation's last customer message time never went backwards."""
    found: Counter[str] = Counter()
    texts: dict[str, str | None] = {}
    with db.session(write=False) as session:
        for chunk in _chunks([m.wamid for m in planned]):
            rows = session.exec(
                select(Message.channel_message_id, Message.content_text).where(
                    Message.channel == "whatsapp", col(Message.channel_message_id).in_(chunk)
                )
            ).all()
            for wamid, content in rows:
                found[str(wamid)] += 1
                texts[str(wamid)] = content
        customers = sorted({m.wa_id for m in planned})
        latest = session.exec(
            select(
                CustomerIdentity.external_id, func.count(), func.max(Conversation.last_customer_message_at)
            )
            .join(Conversation, col(Conversation.customer_id) == col(CustomerIdentity.customer_id))
            .where(CustomerIdentity.channel == "whatsapp", col(CustomerIdentity.external_id).in_(customers))
            .group_by(CustomerIdentity.external_id)
        ).all()
    missing = [m.wamid for m in planned if found[m.wamid] == 0]
    twice = [w for w, n in found.items() if n > 1]
    assert not missing, f"{len(missing)} acknowledged messages were not stored, e.g. {missing[:5]}"
    assert not twice, f"{len(twice)} messages stored more than once, e.g. {twice[:5]}"
    wrong = [m.wamid for m in planned if texts[m.wamid] != m.text]
    assert not wrong, f"texts differ for {wrong[:5]}"
    newest: defaultdict[str, int] = defaultdict(int)
    for m in planned:
        newest[m.wa_id] = max(newest[m.wa_id], m.ts)
    assert len(latest) == len(customers), "a customer has no conversation"
    for wa_id, conversations, last in latest:
        assert conversations == 1, f"customer {wa_id} has {conversations} conversations"
        assert last is not None and int(last.timestamp()) == newest[wa_id], f"{wa_id}: time went backwards"
    return {"messages": len(planned), "customers": len(customers)}


# Media ------------------------------------------------------------------------------------------
def media_stored_once(db: Database, s3: Any, bucket: str, planned: Sequence[Planned]) -> dict[str, int]:
    """One row per media message, stored, with the sandbox's bytes; one object per row in the
    bucket and nothing else there."""
    with_media = {m.wamid: m for m in planned if m.media_id}
    with db.session(write=False) as session:
        rows = session.exec(
            select(Message.channel_message_id, MediaFile)
            .join(MediaFile, col(MediaFile.message_id) == col(Message.id))
            .where(col(Message.channel_message_id).in_(list(with_media)))
        ).all()
        everything = session.exec(select(func.count()).select_from(MediaFile)).one()
    per_message = Counter(str(wamid) for wamid, _ in rows)
    assert set(per_message) == set(with_media), "some media messages have no media row"
    assert max(per_message.values()) == 1, "a media message has several media rows"
    keys = set()
    for wamid, media in rows:
        assert media.status == "stored", (wamid, media.status, media.reason)
        assert media.sha256 == with_media[str(wamid)].media_sha256, wamid
        assert media.storage_key and media.storage_key not in keys
        keys.add(media.storage_key)
    objects: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            objects[item["Key"]] = item["Size"]
    assert len(objects) == everything, f"{len(objects)} objects in the bucket for {everything} media rows"
    assert keys <= set(objects), f"stored media missing from the bucket: {sorted(keys - set(objects))[:5]}"
    for wamid, media in rows:
        data = s3.get_object(Bucket=bucket, Key=media.storage_key)["Body"].read()
        assert hashlib.sha256(data).hexdigest() == with_media[str(wamid)].media_sha256, wamid
    return {"media": len(rows), "objects": len(objects)}


# Periodic ticks ---------------------------------------------------------------------------------
def ticks_ran_once(db: Database, grace_s: float = 20.0) -> dict[str, int]:
    """Each (task, tick) has one row and one job, and that job ran to the end (unless it is
    the last few seconds' tick); ``routing.sweep`` (every 15 s) has no gap."""
    with db.session(write=False) as session:
        now = session.execute(text("SELECT clock_timestamp()")).scalar_one()
        ticks = session.exec(select(PeriodicTick)).all()
        jobs = session.exec(select(Job).where(col(Job.dedupe_key).is_not(None))).all()
    by_key: dict[str, list[Job]] = defaultdict(list)
    for job in jobs:
        by_key[str(job.dedupe_key)].append(job)
    per_task: dict[str, list[int]] = defaultdict(list)
    for tick in ticks:
        key = f"{tick.task}:{tick.tick}"
        found = by_key.get(key, [])
        assert len(found) == 1, f"tick {key} has {len(found)} jobs"
        assert found[0].id == tick.job_id, key
        recent = tick.created_at > now - timedelta(seconds=grace_s)
        assert found[0].state == "done" or (recent and found[0].state in ("queued", "running")), (
            key,
            found[0].state,
            found[0].last_error,
        )
        per_task[tick.task].append(tick.tick)
    sweeps = sorted(per_task["routing.sweep"])
    assert len(sweeps) >= 2 and sweeps == list(range(sweeps[0], sweeps[-1] + 1)), f"sweep ticks: {sweeps}"
    return {"ticks": len(ticks), "sweep_ticks": len(sweeps)}


# Outbound webhooks ------------------------------------------------------------------------------
def _signed(secret: str, delivery: Any) -> bool:
    stamp = datetime.fromtimestamp(int(delivery.headers["webhook-timestamp"]), UTC)
    expected = Webhook(secret).sign(delivery.webhook_id, stamp, delivery.body.decode())
    return expected in delivery.headers["webhook-signature"].split(" ")


def webhooks_delivered(db: Database, sink: HookSink, secret: str, after_seq: int) -> dict[str, int]:
    """Every event after ``after_seq`` reached the receiver at least once, every attempt of an
    event under the same ``webhook-id`` (the delivery's), signed with the subscription's secret."""
    with db.session(write=False) as session:
        events = session.exec(select(Event.id, Event.seq).where(col(Event.seq) > after_seq)).all()
        deliveries: dict[str, WebhookDelivery] = {}
        for chunk in _chunks([e for e, _ in events]):
            for d in session.exec(
                select(WebhookDelivery).where(col(WebhookDelivery.event_id).in_(chunk))
            ).all():
                deliveries[str(d.event_id)] = d
    received = sink.deliveries()
    ids_by_event: dict[str, set[str]] = defaultdict(set)
    ok_by_event: Counter[str] = Counter()
    for delivery in received:
        ids_by_event[delivery.event_id].add(delivery.webhook_id)
        if delivery.answered == 200:
            ok_by_event[delivery.event_id] += 1
        assert _signed(secret, delivery), f"bad signature on {delivery.webhook_id}"
    expected = {str(e) for e, _ in events}
    not_delivered = sorted(expected - set(ok_by_event))
    assert not not_delivered, f"{len(not_delivered)} events never delivered, e.g. {not_delivered[:5]}"
    for event_id in expected:
        row = deliveries.get(event_id)
        assert row is not None and row.state == "succeeded", (event_id, row and row.state)
        assert ids_by_event[event_id] == {row.message_id}, (event_id, ids_by_event[event_id])
    owners = Counter(next(iter(ids)) for ids in ids_by_event.values() if len(ids) == 1)
    assert max(owners.values(), default=1) == 1, "two events share one webhook-id"
    attempts = Counter(d.event_id for d in received)
    retried = sum(1 for e in expected if attempts[e] > 1)
    return {"events": len(expected), "posts": len(received), "events_retried": retried}


# The live stream --------------------------------------------------------------------------------
def visible_seqs(db: Database, user_id: int, after: int, upto: int) -> set[int]:
    with db.session(write=False) as session:
        actor = user_service.actor_for(session, session.get_one(User, user_id))
        rows = session.exec(
            select(Event.seq, Event.audience).where(col(Event.seq) > after, col(Event.seq) <= upto)
        ).all()
    return {int(seq or 0) for seq, audience in rows if event_service.may_receive(actor, dict(audience))}


def stream_complete(
    db: Database, follower: EventFollower, user_id: int, after: int, upto: int
) -> dict[str, int]:
    """The follower got exactly the events it may see, each once, in order."""
    expected = visible_seqs(db, user_id, after, upto)
    target = max(expected, default=after)
    assert follower.wait_for(target, timeout=60), (
        f"{follower.name} stopped at seq {follower.last} of {target}"
    )
    got = [s for s in follower.seqs if s <= upto]
    assert got == sorted(got), f"{follower.name}: events out of order"
    assert len(got) == len(set(got)), f"{follower.name}: an event arrived twice"
    assert not follower.resyncs, f"{follower.name} was told to resync: {follower.resyncs}"
    missing, unexpected = sorted(expected - set(got)), sorted(set(got) - expected)
    assert not missing and not unexpected, f"{follower.name}: missing {missing[:10]}, extra {unexpected[:10]}"
    return {"events": len(got), "connections": follower.connections}


# Outbound messages ------------------------------------------------------------------------------
def sends_at_most_once(
    db: Database, accepted: Sequence[tuple[str, dict[str, Any]]], tag: str
) -> Counter[str]:
    """Each agent reply (its text ends with ``tag``) reached the Graph API at most once; ``sent``
    ones exactly once, under the wamid the sandbox gave; nothing is left pending or sending."""
    by_text: dict[str, list[str]] = defaultdict(list)
    for wamid, body in accepted:
        text_body = str((body.get("text") or {}).get("body"))
        if text_body.endswith(tag):
            by_text[text_body].append(wamid)
    twice = {t: w for t, w in by_text.items() if len(w) > 1}
    assert not twice, f"sent more than once: {twice}"
    with db.session(write=False) as session:
        rows = session.exec(
            select(Message.content_text, Message.delivery_status, Message.channel_message_id).where(
                Message.direction == "outbound", col(Message.content_text).endswith(tag, autoescape=True)
            )
        ).all()
    statuses: Counter[str] = Counter()
    for content, status, stored_wamid in rows:
        statuses[status] += 1
        sent = by_text.get(str(content), [])
        if status in ("sent", "delivered", "read"):
            assert sent == [stored_wamid], (content, sent, stored_wamid)
        else:
            assert status == "unknown" and len(sent) <= 1, (content, status, sent)
    assert set(by_text) <= {str(content) for content, _, _ in rows}, (
        "the Graph API got a message MAX never stored"
    )
    return statuses
