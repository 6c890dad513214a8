"""Delivery statuses, and what agents and supervisors do to conversations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import select

from max_server.channels.whatsapp import payloads as p
from max_server.clock import FrozenClock
from max_server.db import Database
from max_server.jobs.worker import Worker
from max_server.models import AuditEntry, Conversation, Event, InboundEvent, Message, PendingStatus
from max_server.services import outbound, statuses
from tests.channels.conftest import WhatsApp
from tests.conftest import People, bearer
from tests.support import factories
from tests.support.live import LiveServer

WA = "5215512345678"


def outbound_message(
    db: Database, conversation: Conversation, wamid: str | None, status: str = "sent"
) -> Message:
    return factories.message(
        db,
        conversation,
        "respuesta",
        direction="outbound",
        sender_type="agent",
        channel_message_id=wamid,
        delivery_status=status,
    )


def reload(db: Database, message: Message) -> Message:
    with db.session(write=False) as session:
        found = session.get(Message, message.id)
        assert found is not None
        return found


def test_statuses_move_forward_only(whatsapp: WhatsApp, db: Database, clock: FrozenClock) -> None:
    conversation = factories.conversation(db)
    message = outbound_message(db, conversation, "wamid.out1")
    ts = clock.now().timestamp()
    whatsapp.statuses(p.status("wamid.out1", "delivered", WA, ts))
    assert reload(db, message).delivery_status == "delivered"
    whatsapp.statuses(p.status("wamid.out1", "read", WA, ts), p.status("wamid.out1", "delivered", WA, ts))
    assert reload(db, message).delivery_status == "read"
    whatsapp.statuses(p.status("wamid.out1", "sent", WA, ts))
    assert reload(db, message).delivery_status == "read"
    whatsapp.statuses(
        p.status("wamid.out1", "failed", WA, ts, errors=[p.error(131026, "Message undeliverable")])
    )
    assert reload(db, message).delivery_status == "read"  # a read message cannot fail afterwards
    with db.session(write=False) as session:
        updates = list(session.exec(select(Event).where(Event.type == "message.status_updated")))
    assert [e.data["delivery_status"] for e in updates] == ["delivered", "read"]


def test_a_failure_keeps_meta_s_reason_and_131047_closes_the_window(
    whatsapp: WhatsApp, db: Database, clock: FrozenClock
) -> None:
    conversation = factories.conversation(db)
    message = outbound_message(db, conversation, "wamid.out2")
    whatsapp.statuses(
        p.status(
            "wamid.out2",
            "failed",
            WA,
            clock.now().timestamp(),
            errors=[
                p.error(
                    131047,
                    "Re-engagement message",
                    details="More than 24 hours have passed since the recipient last replied",
                )
            ],
        )
    )
    failed = reload(db, message)
    assert failed.delivery_status == "failed"
    assert failed.error is not None
    assert (failed.error["code"], failed.error["title"]) == (131047, "Re-engagement message")
    assert "24 hours" in failed.error["details"]
    with db.session(write=False) as session:
        conv = session.get(Conversation, conversation.id)
        assert conv is not None and conv.window_closed_at == clock.now()


def test_a_status_before_its_message_id_is_known_waits_then_applies(
    whatsapp: WhatsApp, db: Database, clock: FrozenClock
) -> None:
    conversation = factories.conversation(db)
    message = outbound_message(db, conversation, None, status="sending")
    whatsapp.statuses(p.status("wamid.early", "delivered", WA, clock.now().timestamp()))
    with db.session(write=False) as session:
        assert [s.status for s in session.exec(select(PendingStatus))] == ["delivered"]
    outbound.sent(db, message.id, "wamid.early")  # type: ignore[arg-type]
    assert reload(db, message).delivery_status == "delivered"
    with db.session(write=False) as session:
        assert session.exec(select(PendingStatus)).first() is None


def test_the_order_of_statuses() -> None:
    """(An ``unknown`` message learning its fate over HTTP: test_replies.py.)"""
    assert statuses.moves_forward("unknown", "sent")
    assert statuses.moves_forward("unknown", "failed")
    assert not statuses.moves_forward("failed", "read")
    assert not statuses.moves_forward("delivered", "failed")
    assert statuses.moves_forward("read", "played")


@pytest.mark.parametrize("value", ["deleted", "warning"])
def test_a_status_max_does_not_know_is_kept_and_changes_nothing(
    whatsapp: WhatsApp, db: Database, clock: FrozenClock, value: str
) -> None:
    conversation = factories.conversation(db)
    message = outbound_message(db, conversation, "wamid.odd", status="delivered")
    item = p.status("wamid.odd", value, WA, clock.now().timestamp())
    answer = whatsapp.statuses(item)
    assert answer.json()["received"] == {"status_kept_unknown": 1}
    assert reload(db, message).delivery_status == "delivered"
    with db.session(write=False) as session:
        [kept] = session.exec(select(InboundEvent))
        assert session.exec(select(PendingStatus)).first() is None
        assert session.exec(select(Event).where(Event.type == "message.status_updated")).first() is None
    assert kept.kind == f"status:{value}"
    assert (kept.payload["message_id"], kept.payload["raw"]) == (message.id, item)


def test_callback_data_names_only_a_message_still_waiting_for_its_id(
    whatsapp: WhatsApp, db: Database, clock: FrozenClock
) -> None:
    """A status whose wamid is unknown adopts the message its callback data names only while that
    message has no id (``unknown`` or ``sending``); one already sent keeps its own wamid."""
    conversation = factories.conversation(db)
    sent = outbound_message(db, conversation, "wamid.mine")
    lost = outbound_message(db, conversation, None, status="unknown")
    ts = clock.now().timestamp()
    whatsapp.statuses(p.status("wamid.other", "read", WA, ts, biz_opaque_callback_data=f"max:{sent.id}"))
    assert (reload(db, sent).delivery_status, reload(db, sent).channel_message_id) == ("sent", "wamid.mine")
    whatsapp.statuses(p.status("wamid.lost", "sent", WA, ts, biz_opaque_callback_data="someone else's"))
    assert reload(db, lost).delivery_status == "unknown"
    with db.session(write=False) as session:
        waiting = sorted(s.channel_message_id for s in session.exec(select(PendingStatus)))
    assert waiting == ["wamid.lost", "wamid.other"]
    whatsapp.statuses(p.status("wamid.lost", "delivered", WA, ts, biz_opaque_callback_data=f"max:{lost.id}"))
    found = reload(db, lost)
    # The earlier status that waited for this wamid is applied first, then this one.
    assert (found.delivery_status, found.channel_message_id, found.error) == ("delivered", "wamid.lost", None)
    with db.session(write=False) as session:
        assert [s.channel_message_id for s in session.exec(select(PendingStatus))] == ["wamid.other"]


def test_statuses_that_waited_a_week_are_pruned(db: Database, worker: Worker) -> None:
    from max_server.jobs import queue, registry

    now = datetime.now(UTC)  # the prune job measures on the database's clock
    with db.session() as session:
        for wamid, age in (("wamid.old", timedelta(days=8)), ("wamid.young", timedelta(days=6))):
            session.add(
                PendingStatus(
                    channel="whatsapp", channel_message_id=wamid, status="read", created_at=now - age
                )
            )
        queue.enqueue(session, "statuses.prune", {})
        session.commit()
    assert worker.drain() == 1
    with db.session(write=False) as session:
        assert [s.channel_message_id for s in session.exec(select(PendingStatus))] == ["wamid.young"]
    assert any(t.name == "statuses.prune" and t.interval == 86400 for t in registry.periodic_tasks())


# Actions --------------------------------------------------------------------------------
def call(live: LiveServer, token: str, method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(method, live.url + path, json=body, headers=bearer(token))


@pytest.fixture
def crew(people: People, db: Database) -> dict[str, Any]:
    support, sales = people.team("support"), people.team("sales")
    ana, ana_token = people.user("agent", "Ana")
    beto, beto_token = people.user("agent", "Beto")
    sup, sup_token = people.user("agent", "Sofía")
    people.join(support, ana)
    people.join(support, beto)
    people.join(support, sup, "supervisor")
    people.join(sales, beto)
    conversation = factories.conversation(db, team=support)
    return {
        "support": support,
        "sales": sales,
        "ana": (ana, ana_token),
        "beto": (beto, beto_token),
        "sup": (sup, sup_token),
        "conversation": conversation,
    }


def test_assign_take_and_hand_back(live: LiveServer, crew: dict[str, Any], db: Database) -> None:
    cid = crew["conversation"].id
    ana, ana_token = crew["ana"]
    beto, beto_token = crew["beto"]
    _, sup_token = crew["sup"]
    taken = call(live, ana_token, "POST", f"/api/v1/conversations/{cid}/assign", {"user_id": "me"})
    assert taken.status_code == 200
    assert (taken.json()["status"], taken.json()["assignee"]["name"]) == ("assigned", "Ana")
    # Beto cannot take it from Ana; the supervisor can give it to him.
    stolen = call(live, beto_token, "POST", f"/api/v1/conversations/{cid}/assign", {"user_id": "me"})
    assert (stolen.status_code, stolen.json()["error"]["code"]) == (403, "not_allowed")
    given = call(live, sup_token, "POST", f"/api/v1/conversations/{cid}/assign", {"user_id": str(beto.id)})
    assert given.json()["assignee"]["name"] == "Beto"
    back = call(live, beto_token, "POST", f"/api/v1/conversations/{cid}/assign", {"user_id": None})
    assert (back.json()["status"], back.json()["assignee"]) == ("queued", None)
    with db.session(write=False) as session:
        assigned = list(
            session.exec(select(Event).where(Event.type == "conversation.assigned").order_by(Event.id))
        )
        actions = [
            a.action for a in session.exec(select(AuditEntry).where(AuditEntry.target_type == "conversation"))
        ]
    # Ana, who lost it, was told.
    assert ana.id in assigned[1].audience["users"]
    assert actions == ["conversation.assigned"] * 3


def test_transfer_priority_close_and_reopen(live: LiveServer, crew: dict[str, Any], db: Database) -> None:
    cid = crew["conversation"].id
    _, ana_token = crew["ana"]
    _, beto_token = crew["beto"]
    _, sup_token = crew["sup"]
    call(live, ana_token, "POST", f"/api/v1/conversations/{cid}/assign", {"user_id": "me"})
    urgent = call(live, beto_token, "PATCH", f"/api/v1/conversations/{cid}", {"priority": "urgent"})
    assert urgent.json()["priority"] == "urgent"
    bad = call(live, beto_token, "PATCH", f"/api/v1/conversations/{cid}", {"priority": "asap"})
    assert bad.status_code == 422
    moved = call(live, ana_token, "POST", f"/api/v1/conversations/{cid}/transfer", {"team": "sales"})
    assert moved.status_code == 200
    assert (moved.json()["team"]["slug"], moved.json()["status"], moved.json()["assignee"]) == (
        "sales",
        "queued",
        None,
    )
    # Ana no longer sees it (not in sales); Beto does.
    assert call(live, ana_token, "GET", f"/api/v1/conversations/{cid}").status_code == 404
    call(live, beto_token, "POST", f"/api/v1/conversations/{cid}/assign", {"user_id": "me"})
    no_reason = call(live, beto_token, "POST", f"/api/v1/conversations/{cid}/close", {"reason": "bored"})
    assert no_reason.status_code == 422
    closed = call(live, beto_token, "POST", f"/api/v1/conversations/{cid}/close", {"reason": "resolved"})
    assert (closed.json()["status"], closed.json()["close_reason"]) == ("closed", "resolved")
    mine = call(live, beto_token, "GET", "/api/v1/conversations?assignee=me").json()["conversations"]
    assert mine == []  # closing moves it out of "Mine"
    again = call(live, beto_token, "POST", f"/api/v1/conversations/{cid}/close", {"reason": "resolved"})
    assert again.status_code == 409
    reopened = call(live, beto_token, "POST", f"/api/v1/conversations/{cid}/reopen")
    assert (reopened.json()["status"], reopened.json()["cycle"]) == ("assigned", 2)
    with db.session(write=False) as session:
        types = [e.type for e in session.exec(select(Event).order_by(Event.id))]
    assert types == [
        "conversation.assigned",
        "conversation.updated",
        "conversation.transferred",
        "conversation.assigned",
        "conversation.closed",
        "conversation.reopened",
    ]
    with db.session(write=False) as session:
        audited = [
            (a.action, a.actor_user_id, a.data)
            for a in session.exec(
                select(AuditEntry)
                .where(AuditEntry.target_type == "conversation", AuditEntry.target_id == str(cid))
                .order_by(AuditEntry.id)  # type: ignore[arg-type]
            )
        ]
    ana, beto = crew["ana"][0].id, crew["beto"][0].id
    support, sales = crew["support"].id, crew["sales"].id
    assert audited == [
        ("conversation.assigned", ana, {"from": None, "to": ana}),
        ("conversation.updated", beto, {"priority": {"from": "normal", "to": "urgent"}}),
        (
            "conversation.transferred",
            ana,
            {"from_team": support, "to_team": sales, "previous_assignee": ana},
        ),
        ("conversation.assigned", beto, {"from": None, "to": beto}),
        ("conversation.closed", beto, {"reason": "resolved"}),
        ("conversation.reopened", beto, {"cycle": 2}),
    ]
    _ = sup_token


def test_closing_needs_the_assignee_or_a_supervisor(live: LiveServer, crew: dict[str, Any]) -> None:
    cid = crew["conversation"].id
    _, ana_token = crew["ana"]
    _, beto_token = crew["beto"]
    _, sup_token = crew["sup"]
    call(live, ana_token, "POST", f"/api/v1/conversations/{cid}/assign", {"user_id": "me"})
    assert (
        call(live, beto_token, "POST", f"/api/v1/conversations/{cid}/close", {"reason": "spam"}).status_code
        == 403
    )
    assert (
        call(live, sup_token, "POST", f"/api/v1/conversations/{cid}/close", {"reason": "spam"}).status_code
        == 200
    )


def test_a_customer_writing_after_close_reopens_within_the_window_else_starts_anew(
    live: LiveServer, whatsapp: WhatsApp, people: People, db: Database, clock: FrozenClock
) -> None:
    _, admin = people.user("admin")
    whatsapp.text("hola", ts=clock.now().timestamp())
    [conversation] = call(live, admin, "GET", "/api/v1/conversations").json()["conversations"]
    call(live, admin, "POST", f"/api/v1/conversations/{conversation['id']}/close", {"reason": "resolved"})
    clock.advance(hours=2)
    whatsapp.text("una cosa más", ts=clock.now().timestamp())
    [again] = call(live, admin, "GET", "/api/v1/conversations").json()["conversations"]
    assert (again["id"], again["cycle"], again["status"]) == (conversation["id"], 2, "queued")
    call(live, admin, "POST", f"/api/v1/conversations/{again['id']}/close", {"reason": "resolved"})
    clock.advance(days=2)
    whatsapp.text("hola de nuevo", ts=clock.now().timestamp())
    [fresh] = call(live, admin, "GET", "/api/v1/conversations").json()["conversations"]
    assert fresh["id"] != conversation["id"]
    assert fresh["number"] == conversation["number"] + 1
    with db.session(write=False) as session:
        types = [
            e.type
            for e in session.exec(select(Event).where(Event.type.like("conversation.%")).order_by(Event.id))
        ]  # type: ignore[attr-defined]
    assert types == [
        "conversation.created",
        "conversation.closed",
        "conversation.reopened",
        "conversation.closed",
        "conversation.created",
    ]
    _ = timedelta
