"""Managing subscriptions over the API: secrets shown once, rotation, ping, deliveries, redelivery."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import select
from standardwebhooks.webhooks import Webhook

from max_server.clock import FrozenClock
from max_server.db import Database
from max_server.jobs import registry
from max_server.jobs.worker import Worker
from max_server.models import WebhookDelivery
from max_server.realtime import Sequencer
from max_server.services import events
from max_server.settings import Settings
from tests.conftest import People, bearer
from tests.webhooks.conftest import Admin, Receiver, pump, verify


def emit(db: Database, type_: str = "conversation.closed") -> None:
    with db.session() as session:
        events.emit(session, type_, {"id": "1"}, to=events.audience(everyone=True))
        session.commit()


def test_the_secret_is_shown_once_and_never_listed(admin: Admin, receiver: Receiver, people: People) -> None:
    created = admin.subscribe(
        receiver.url, ["conversation.closed", "conversation.assigned"], description="CRM"
    )
    secret = created["secret"]
    assert secret.startswith("whsec_")
    assert created["subscription"]["events"] == ["conversation.closed", "conversation.assigned"]
    assert (created["subscription"]["max_attempts"], created["subscription"]["timeout_s"]) == (8, 15)
    subscription_id = created["subscription"]["id"]
    for response in (admin.get("/api/v1/webhooks"), admin.get(f"/api/v1/webhooks/{subscription_id}")):
        assert response.status_code == 200
        assert secret not in response.text and secret.removeprefix("whsec_") not in response.text
        assert "secret" not in response.text.replace("previous_secret_until", "")
    [listed] = admin.get("/api/v1/webhooks").json()["subscriptions"]
    assert listed["description"] == "CRM"
    _, agent = people.user("supervisor")
    assert admin.http.get("/api/v1/webhooks", headers=bearer(agent)).status_code == 403


def test_event_types_are_checked(admin: Admin, receiver: Receiver) -> None:
    typo = admin.post("/api/v1/webhooks", json={"url": receiver.url, "events": ["conversation.close"]})
    assert (typo.status_code, typo.json()["error"]["code"]) == (422, "unknown_event_type")
    assert "conversation.closed" in typo.json()["error"]["details"]["known"]
    family = admin.subscribe(receiver.url, ["conversation.*", "sla.warning"])
    assert family["subscription"]["events"] == ["conversation.*", "sla.warning"]
    star = admin.subscribe(receiver.url, ["*", "sla.warning"])
    assert star["subscription"]["events"] == ["*"]


def test_rotating_the_secret_signs_with_both_for_24_hours(
    admin: Admin, receiver: Receiver, worker: Worker, db: Database, clock: FrozenClock
) -> None:
    created = admin.subscribe(receiver.url, ["*"])
    subscription_id = created["subscription"]["id"]
    rotated = admin.post(f"/api/v1/webhooks/{subscription_id}/rotate-secret").json()
    new, old = rotated["secret"], created["secret"]
    assert new != old and new.startswith("whsec_")
    assert rotated["subscription"]["previous_secret_until"] == (
        clock.now() + timedelta(hours=24)
    ).isoformat().replace("+00:00", "Z")
    emit(db)
    pump(db, worker)
    [during] = receiver.received
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    verify(during, new, previous=old)  # X-MAX-Signature uses the current secret
    clock.advance(hours=24, seconds=1)
    emit(db)
    pump(db, worker)
    after = receiver.received[-1]
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    verify(after, new)


def test_ping_goes_to_that_subscription_only(
    admin: Admin, worker: Worker, db: Database, receiver: Receiver
) -> None:
    pinged = admin.subscribe(receiver.url, ["*"])
    admin.subscribe(receiver.url + "/other", ["*"])
    answer = admin.post(f"/api/v1/webhooks/{pinged['subscription']['id']}/test")
    assert answer.status_code == 202
    pump(db, worker)
    [delivered] = receiver.received
    assert delivered.path == "/hooks/max"
    body = verify(delivered, pinged["secret"])
    assert (body["type"], body["id"], body["data"]["subscription_id"]) == (
        "ping",
        answer.json()["event_id"],
        pinged["subscription"]["id"],
    )
    found = admin.get(
        f"/api/v1/webhooks/{pinged['subscription']['id']}/deliveries",
        params={"event_id": answer.json()["event_id"]},
    ).json()["deliveries"]
    assert [(d["event_type"], d["state"], d["webhook_id"]) for d in found] == [
        ("ping", "succeeded", delivered.webhook_id)
    ]


def test_failed_deliveries_are_listed_and_redelivered_with_the_same_webhook_id(
    admin: Admin, receiver: Receiver, worker: Worker, db: Database
) -> None:
    created = admin.subscribe(receiver.url, ["conversation.closed"])
    subscription_id = created["subscription"]["id"]
    receiver.answer_next(422)
    emit(db)
    emit(db)
    pump(db, worker)
    path = f"/api/v1/webhooks/{subscription_id}/deliveries"
    [failed] = admin.get(path, params={"state": "failed"}).json()["deliveries"]
    assert (failed["attempts"], failed["last_status_code"], failed["last_error"]) == (1, 422, "HTTP 422")
    assert len(admin.get(path).json()["deliveries"]) == 2
    detail = admin.get(f"/api/v1/webhook-deliveries/{failed['id']}").json()
    assert [(a["attempt"], a["status_code"], a["response_body"]) for a in detail["attempt_log"]] == [
        (1, 422, "answered 422")
    ]
    again = admin.post(f"/api/v1/webhook-deliveries/{failed['id']}/redeliver")
    assert again.json()["state"] == "pending"
    pump(db, worker)
    detail = admin.get(f"/api/v1/webhook-deliveries/{failed['id']}").json()
    assert (detail["state"], detail["attempts"]) == ("succeeded", 2)
    assert [a["status_code"] for a in detail["attempt_log"]] == [422, 200]
    first, _, last = receiver.received
    assert first.webhook_id == last.webhook_id and first.body == last.body
    verify(last, created["secret"])
    assert admin.get(path, params={"state": "failed"}).json()["deliveries"] == []


def test_disable_cancels_pending_and_enable_resumes(
    admin: Admin, receiver: Receiver, worker: Worker, db: Database, clock: FrozenClock
) -> None:
    created = admin.subscribe(receiver.url, ["*"])
    subscription_id = created["subscription"]["id"]
    receiver.answer_next(500)
    emit(db)
    pump(db, worker)
    off = admin.post(f"/api/v1/webhooks/{subscription_id}/disable", json={"reason": "maintenance"}).json()
    assert (off["is_active"], off["disabled_reason"]) == (False, "maintenance")
    clock.advance(minutes=1)
    pump(db, worker)
    assert len(receiver.received) == 1
    with db.session(write=False) as session:
        [delivery] = session.exec(select(WebhookDelivery)).all()
    assert delivery.state == "cancelled"
    assert admin.post(f"/api/v1/webhooks/{subscription_id}/test").status_code == 409
    on = admin.post(f"/api/v1/webhooks/{subscription_id}/enable").json()
    assert (on["is_active"], on["disabled_reason"], on["failing_since"]) == (True, None, None)
    emit(db)
    pump(db, worker)
    assert len(receiver.received) == 2
    assert admin.delete(f"/api/v1/webhooks/{subscription_id}").status_code == 204
    assert admin.get(f"/api/v1/webhooks/{subscription_id}").status_code == 404
    with db.session(write=False) as session:
        assert session.exec(select(WebhookDelivery)).all() == []


def test_a_receiver_on_the_real_clock_verifies_with_the_package(
    admin: Admin, receiver: Receiver, db: Database, settings: Settings
) -> None:
    """No frozen clock here: ``Webhook.verify`` checks the timestamp against the wall clock."""
    registry.load_builtin_handlers()
    created = admin.subscribe(receiver.url, ["*"])
    admin.post(f"/api/v1/webhooks/{created['subscription']['id']}/test")
    Sequencer(db).run_once()
    Worker(db, settings, concurrency=1, name="real-clock").drain()
    [delivered] = receiver.received
    payload: Any = Webhook(created["secret"]).verify(delivered.body, delivered.headers)
    assert payload["type"] == "ping"
