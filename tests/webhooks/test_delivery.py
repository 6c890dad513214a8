"""Delivery as DESIGN §6: one delivery per event and subscription, the exact signed bytes, the
persisted retry schedule, and what each kind of answer does."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import col, select

from max_server.access import Actor
from max_server.clock import FrozenClock
from max_server.db import Database
from max_server.jobs.worker import Worker
from max_server.models import Event, Job, WebhookAttempt, WebhookDelivery, WebhookSubscription
from max_server.services import events, webhook_delivery, webhook_fanout, webhook_sending
from max_server.settings import Settings
from tests.channels.conftest import WhatsApp
from tests.webhooks.conftest import Admin, Receiver, pump, verify

WA = "5215512345678"
SYSTEM = Actor.system("tests")
JOB = webhook_delivery.JOB


def emit(db: Database, type_: str = "conversation.closed", **data: Any) -> int:
    with db.session() as session:
        event = events.emit(session, type_, {"id": "1", **data}, to=events.audience(everyone=True))
        session.commit()
        assert event.id is not None
        return event.id


def deliveries(db: Database) -> list[WebhookDelivery]:
    with db.session(write=False) as session:
        return list(session.exec(select(WebhookDelivery).order_by(col(WebhookDelivery.id))))


def attempts(db: Database, delivery_id: int | None = None) -> list[WebhookAttempt]:
    with db.session(write=False) as session:
        query = select(WebhookAttempt).order_by(col(WebhookAttempt.id))
        if delivery_id is not None:
            query = query.where(WebhookAttempt.delivery_id == delivery_id)
        return list(session.exec(query))


def subscription(db: Database, subscription_id: str) -> WebhookSubscription:
    with db.session(write=False) as session:
        found = session.get(WebhookSubscription, int(subscription_id))
        assert found is not None
        return found


def test_events_reach_the_receiver_signed_with_enough_to_act_on(
    admin: Admin, receiver: Receiver, whatsapp: WhatsApp, worker: Worker, db: Database, clock: FrozenClock
) -> None:
    chosen = admin.subscribe(receiver.url, ["conversation.closed", "conversation.assigned"])
    everything = admin.subscribe(receiver.url + "/all", ["*"])
    whatsapp.text("hola", wa_id=WA, ts=clock.now().timestamp())
    [conversation] = admin.get("/api/v1/conversations").json()["conversations"]
    assert admin.post(f"/api/v1/conversations/{conversation['id']}/assign", json={"user_id": "me"}).is_success
    assert admin.post(
        f"/api/v1/conversations/{conversation['id']}/close", json={"reason": "resolved"}
    ).is_success
    pump(db, worker)

    bodies = [verify(d, chosen["secret"]) for d in receiver.at("/hooks/max")]
    assert [b["type"] for b in bodies] == ["conversation.assigned", "conversation.closed"]
    closed = bodies[1]
    assert set(closed) == {"id", "seq", "type", "created_at", "data"}
    data = closed["data"]
    assert (data["number"], data["status"], data["close_reason"], data["channel"]) == (
        conversation["number"],
        "closed",
        "resolved",
        "whatsapp",
    )
    assert data["customer"]["identities"] == [{"channel": "whatsapp", "external_id": WA}]
    assert data["assignee"]["name"] == "Ada Admin"

    # "*" got every sequenced event, once each; the chosen subscription only its two types.
    with db.session(write=False) as session:
        sequenced = list(
            session.exec(select(Event).where(col(Event.seq).is_not(None)).order_by(col(Event.seq)))
        )
    rows = deliveries(db)
    assert sorted(d.event_id for d in rows if d.subscription_id == int(everything["subscription"]["id"])) == [
        e.id for e in sequenced
    ]
    assert {d.event_type for d in rows if d.subscription_id == int(chosen["subscription"]["id"])} == {
        "conversation.assigned",
        "conversation.closed",
    }
    assert all(d.state == "succeeded" and d.attempts == 1 for d in rows)
    for delivered in receiver.received:  # every delivery verifies with its own subscription's secret
        secret = everything["secret"] if delivered.path.endswith("/all") else chosen["secret"]
        body = verify(delivered, secret)
        assert delivered.headers["x-max-event"] == body["type"]
        assert delivered.headers["content-type"] == "application/json"
    assert len(receiver.at("/hooks/max/all")) == len(sequenced)
    logged = attempts(db)
    assert {(a.status_code, a.response_body, a.error) for a in logged} == {(200, "answered 200", None)}
    assert all(a.duration_ms is not None and a.duration_ms >= 0 for a in logged)

    # Exactly once: running the hook again over the same events creates nothing.
    with db.session() as session:
        webhook_fanout.create_deliveries(session, sequenced)
        session.commit()
    assert len(deliveries(db)) == len(rows)


def test_a_receiver_failing_three_times_gets_the_event_four_times_with_one_webhook_id(
    admin: Admin, receiver: Receiver, worker: Worker, db: Database, clock: FrozenClock
) -> None:
    created = admin.subscribe(receiver.url, ["conversation.closed"])
    receiver.answer_next(500, 503, 429)
    event_id = emit(db, number=7)
    started = clock.now()
    pump(db, worker)
    [delivery] = deliveries(db)
    assert (delivery.state, delivery.attempts, delivery.next_attempt_at) == (
        "pending",
        1,
        started + timedelta(seconds=5),
    )
    for wait, expected_count in ((4, 1), (1, 2), (299, 2), (1, 3), (1799, 3), (1, 4)):
        clock.advance(seconds=wait)
        pump(db, worker)
        assert len(receiver.received) == expected_count, (wait, expected_count)
    got = receiver.received
    assert len({d.webhook_id for d in got}) == 1
    assert len({d.body for d in got}) == 1  # the same bytes on every attempt
    assert len({d.headers["webhook-timestamp"] for d in got}) == 4  # signed afresh each time
    for delivered in got:
        assert verify(delivered, created["secret"])["id"] == str(event_id)
    [delivery] = deliveries(db)
    assert (delivery.state, delivery.attempts, delivery.last_status_code) == ("succeeded", 4, 200)
    assert [a.status_code for a in attempts(db)] == [500, 503, 429, 200]
    assert subscription(db, created["subscription"]["id"]).failing_since is None


def test_the_schedule_survives_a_restart_between_attempts(
    admin: Admin, receiver: Receiver, db: Database, settings: Settings, clock: FrozenClock
) -> None:
    from max_server.jobs import registry

    registry.load_builtin_handlers()
    admin.subscribe(receiver.url, ["*"])
    receiver.answer_next(502, 502)
    emit(db, "sla.warning")

    def started(database: Database, name: str) -> Worker:
        return Worker(database, settings, concurrency=1, now=lambda _: clock.now(), name=name)

    first = started(db, "before-restart")
    pump(db, first)
    assert len(receiver.received) == 1
    clock.advance(seconds=5)
    pump(db, first)  # attempt 2 at +5 s fails too: the next one is due 5 minutes later
    assert len(receiver.received) == 2
    db.dispose()  # the process stops: nothing of it survives but the database

    again = Database(db.url)
    try:
        with again.session(write=False) as session:
            [queued] = session.exec(
                select(Job).where(Job.kind == "webhooks.deliver", Job.state == "queued")
            ).all()
        assert queued.run_at == clock.now() + timedelta(minutes=5)
        assert queued.payload["attempt"] == 3
        second = started(again, "after-restart")
        clock.advance(minutes=4, seconds=59)
        assert second.drain() == 0
        clock.advance(seconds=1)
        assert second.drain() == 1
    finally:
        again.dispose()
    got = receiver.wait_for(3)
    assert len(got) == 3 and len({d.webhook_id for d in got}) == 1
    [delivery] = deliveries(db)
    assert (delivery.state, delivery.attempts) == ("succeeded", 3)


def test_410_disables_the_subscription_and_other_4xx_stop(
    admin: Admin, worker: Worker, db: Database, clock: FrozenClock
) -> None:
    from tests.webhooks.conftest import Receiver as Endpoint

    with Endpoint() as gone, Endpoint() as picky:
        gone.answer_next(410)
        picky.answer_next(400)
        dead = admin.subscribe(gone.url, ["*"])
        strict = admin.subscribe(picky.url, ["*"])
        emit(db)
        pump(db, worker)
        clock.advance(hours=30)
        emit(db)
        pump(db, worker)
        assert len(gone.received) == 1  # never again
        # The 400 was not retried; later events still go (the admins' notification among them).
        sent = [d.json()["type"] for d in picky.received]
        assert sent == ["conversation.closed", "notification.created", "conversation.closed"]
    disabled = subscription(db, dead["subscription"]["id"])
    assert (disabled.is_active, disabled.disabled_reason) == (False, "the endpoint answered 410 Gone")
    assert subscription(db, strict["subscription"]["id"]).is_active
    states = [(d.subscription_id, d.state, d.attempts) for d in deliveries(db)]
    dead_id, strict_id = int(dead["subscription"]["id"]), int(strict["subscription"]["id"])
    assert [(s, n) for (sub, s, n) in states if sub == dead_id] == [("failed", 1)]
    assert [(s, n) for (sub, s, n) in states if sub == strict_id] == [
        ("failed", 1),
        ("succeeded", 1),
        ("succeeded", 1),
    ]
    notes = admin.get("/api/v1/notifications").json()["notifications"]
    assert [n["kind"] for n in notes] == ["webhook.disabled"]
    assert dead["subscription"]["url"] in notes[0]["text"]
    with db.session(write=False) as session:
        assert (
            session.exec(select(Job).where(Job.kind == "webhooks.deliver", Job.state == "queued")).all() == []
        )


def test_timeouts_retry(
    admin: Admin, receiver: Receiver, worker: Worker, db: Database, clock: FrozenClock
) -> None:
    created = admin.subscribe(receiver.url, ["*"], timeout_s=1)
    receiver.answer_next(200, delay=2.5)
    emit(db)
    pump(db, worker)
    [delivery] = deliveries(db)
    assert (delivery.state, delivery.last_status_code, delivery.last_error) == (
        "pending",
        None,
        "no answer within 1s",
    )
    clock.advance(seconds=5)
    pump(db, worker)
    [delivery] = deliveries(db)
    assert (delivery.state, delivery.attempts) == ("succeeded", 2)
    for delivered in receiver.wait_for(2):
        verify(delivered, created["secret"])


def test_a_subscription_failing_for_five_days_is_disabled_and_admins_are_told(
    admin: Admin, receiver: Receiver, worker: Worker, db: Database, clock: FrozenClock
) -> None:
    created = admin.subscribe(receiver.url, ["*"])
    receiver.answer_next(*[500] * 50)
    emit(db)
    pump(db, worker)
    first_failure = clock.now()
    for _ in range(8):  # the first event's schedule runs out after about 28 hours
        clock.advance(hours=10)
        pump(db, worker)
    [first] = deliveries(db)
    assert (first.state, first.attempts) == ("failed", 8)
    assert subscription(db, created["subscription"]["id"]).is_active  # 3 days: not yet
    clock.set(first_failure + timedelta(days=5, seconds=1))
    emit(db)
    pump(db, worker)
    row = subscription(db, created["subscription"]["id"])
    assert not row.is_active
    assert row.disabled_reason == "every attempt has failed since 2026-03-02T15:00:00Z (over 5d)"
    notes = admin.get("/api/v1/notifications").json()["notifications"]
    assert [n["kind"] for n in notes] == ["webhook.disabled"]
    received = len(receiver.received)
    emit(db)
    clock.advance(hours=1)
    pump(db, worker)
    assert len(receiver.received) == received  # nothing goes to a disabled subscription


def test_a_success_clears_the_failure_record(
    admin: Admin, receiver: Receiver, worker: Worker, db: Database, clock: FrozenClock
) -> None:
    created = admin.subscribe(receiver.url, ["*"])
    receiver.answer_next(500)
    emit(db)
    pump(db, worker)
    assert subscription(db, created["subscription"]["id"]).failing_since == clock.now()
    clock.advance(seconds=5)
    pump(db, worker)
    assert subscription(db, created["subscription"]["id"]).failing_since is None


def test_a_redirect_stops_and_says_why(
    admin: Admin, receiver: Receiver, worker: Worker, db: Database, clock: FrozenClock
) -> None:
    admin.subscribe(receiver.url, ["*"])
    receiver.answer_next(301, headers={"Location": "https://elsewhere.example/hooks"})
    emit(db)
    pump(db, worker)
    clock.advance(hours=1)
    pump(db, worker)
    assert len(receiver.received) == 1  # not retried, and the redirect is not followed
    [delivery] = deliveries(db)
    assert (delivery.state, delivery.attempts, delivery.last_status_code) == ("failed", 1, 301)
    reason = (
        "HTTP 301: redirects are not followed (to https://elsewhere.example/hooks); subscribe the final URL"
    )
    assert delivery.last_error == reason
    [attempt] = attempts(db)
    assert (attempt.status_code, attempt.error) == (301, reason)
    with db.session(write=False) as session:
        assert session.exec(select(Job).where(Job.kind == JOB, Job.state == "queued")).all() == []
    assert [webhook_sending.classify(code) for code in (302, 307, 308)] == ["stop"] * 3


def test_an_attempt_logs_the_first_1000_characters_of_the_answer(
    admin: Admin, receiver: Receiver, worker: Worker, db: Database
) -> None:
    admin.subscribe(receiver.url, ["*"])
    long_answer = ("ñ" + "x" * 99) * 30  # 3000 characters, more bytes than that
    receiver.answer_next(500, body=long_answer.encode())
    emit(db)
    pump(db, worker)
    [first] = attempts(db)
    assert first.response_body == long_answer[:1000]
