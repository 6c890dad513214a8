"""``POST /api/v1/conversations/{id}/messages/{message_id}/resend``: an agent's message left
``failed`` or ``unknown`` goes out again as a NEW message with the same content (the original
keeps its state and error, flagged ``resent``, once); the reply rules apply; refusals change
nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, select

from max_server.clock import FrozenClock
from max_server.db import Database
from max_server.models import Event, Job, Message, WhatsAppTemplate
from tests.conftest import People, bearer
from tests.support import factories

FAILED = {"code": 131026, "title": "Message undeliverable", "message": None, "details": None}


def resend_path(conversation_id: Any, message_id: Any) -> str:
    return f"/api/v1/conversations/{conversation_id}/messages/{message_id}/resend"


def outbound(db: Database, conversation: Any, text: str, status: str, **fields: Any) -> Message:
    return factories.message(
        db,
        conversation,
        text,
        direction="outbound",
        sender_type="agent",
        delivery_status=status,
        error=FAILED if status == "failed" else None,
        **fields,
    )


def messages_of(db: Database, conversation: Any) -> list[Message]:
    with db.session(write=False) as session:
        return list(
            session.exec(
                select(Message).where(Message.conversation_id == conversation.id).order_by(col(Message.id))
            )
        )


def sends_queued(db: Database) -> list[int]:
    with db.session(write=False) as session:
        jobs = session.exec(select(Job).where(Job.kind == "whatsapp.send").order_by(col(Job.id)))
        return [int(j.payload["message_id"]) for j in jobs]


def event_types(db: Database) -> list[tuple[str, Any]]:
    with db.session(write=False) as session:
        return [(e.type, e.data) for e in session.exec(select(Event).order_by(col(Event.id)))]


@pytest.fixture
def world(db: Database, people: People, clock: FrozenClock) -> dict[str, Any]:
    support, secret = people.team("support"), people.team("secret")
    ana, token = people.user("agent", "Ana")
    people.join(support, ana)
    conversation = factories.conversation(db, team=support, assignee=ana)
    hidden = factories.conversation(db, team=secret, customer_row=factories.customer(db, "Otro"))
    return {
        "agent": bearer(token),
        "ana": ana,
        "support": support,
        "conversation": conversation,
        "hidden": hidden,
    }


@pytest.mark.parametrize("status", ["failed", "unknown"])
def test_a_failed_or_unknown_message_is_sent_again_as_a_new_message(
    api: TestClient, db: Database, world: dict[str, Any], status: str
) -> None:
    conversation = world["conversation"]
    original = outbound(db, conversation, "Tu pedido ya salió", status)
    response = api.post(resend_path(conversation.id, original.id), headers=world["agent"])
    assert response.status_code == 201, response.text
    copy = response.json()
    assert copy["id"] != str(original.id)
    assert (copy["content_text"], copy["type"], copy["delivery_status"]) == (
        "Tu pedido ya salió",
        "text",
        "pending",
    )
    assert copy["sender"]["name"] == "Ana"
    assert sends_queued(db) == [int(copy["id"])]  # the copy goes out; the original never again
    before, after = messages_of(db, conversation)
    assert after.id == int(copy["id"]) and after.flags == []
    assert before.id == original.id and before.delivery_status == status  # history stays honest
    assert before.flags == ["resent"]
    assert (before.error or {}).get("code") == (131026 if status == "failed" else None)
    announced = [(t, p) for t, p in event_types(db) if t.startswith("message.")]
    assert [(t, p["id"], p["flags"]) for t, p in announced if t == "message.status_updated"] == [
        ("message.status_updated", str(original.id), ["resent"])
    ]
    assert [p["id"] for t, p in announced if t == "message.created"] == [copy["id"]]

    again = api.post(resend_path(conversation.id, original.id), headers=world["agent"])
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_resent"
    assert len(messages_of(db, conversation)) == 2 and sends_queued(db) == [int(copy["id"])]


def test_only_an_agents_failed_or_unknown_message_can_be_resent(
    api: TestClient, db: Database, world: dict[str, Any]
) -> None:
    conversation = world["conversation"]
    delivered = outbound(db, conversation, "ya llegó", "delivered")
    inbound = factories.message(db, conversation, "hola")
    automatic = factories.message(
        db,
        conversation,
        "fuera de horario",
        direction="outbound",
        sender_type="system",
        delivery_status="failed",
    )
    for message, code in (
        (delivered, "not_resendable"),
        (inbound, "not_resendable"),
        (automatic, "not_resendable"),
    ):
        response = api.post(resend_path(conversation.id, message.id), headers=world["agent"])
        assert (response.status_code, response.json()["error"]["code"]) == (409, code), response.text
    assert sends_queued(db) == []
    assert all(m.flags == [] for m in messages_of(db, conversation))


def test_what_one_may_not_see_or_what_is_elsewhere_is_not_found(
    api: TestClient, db: Database, world: dict[str, Any]
) -> None:
    hidden = world["hidden"]
    theirs = outbound(db, hidden, "secreto", "failed")
    response = api.post(resend_path(hidden.id, theirs.id), headers=world["agent"])
    assert response.status_code == 404
    # A message of another conversation, named through one's own: not found either.
    response = api.post(resend_path(world["conversation"].id, theirs.id), headers=world["agent"])
    assert response.status_code == 404 and response.json()["error"]["code"] == "message_not_found"
    assert (
        api.post(resend_path(world["conversation"].id, 987654321), headers=world["agent"]).status_code == 404
    )
    assert sends_queued(db) == [] and messages_of(db, hidden)[0].flags == []


def test_outside_the_window_text_is_refused_and_nothing_changes(
    api: TestClient, db: Database, world: dict[str, Any], clock: FrozenClock
) -> None:
    conversation = world["conversation"]
    original = outbound(db, conversation, "¿Sigues ahí?", "failed")
    clock.advance(timedelta(hours=25))  # the customer wrote more than 24 h ago
    response = api.post(resend_path(conversation.id, original.id), headers=world["agent"])
    assert response.status_code == 409 and response.json()["error"]["code"] == "whatsapp_window_closed"
    [still] = messages_of(db, conversation)
    assert still.flags == [] and still.delivery_status == "failed"  # nothing half-written
    assert sends_queued(db) == [] and all(t != "message.status_updated" for t, _ in event_types(db))


def test_a_template_is_resent_even_outside_the_window(
    api: TestClient, db: Database, world: dict[str, Any], clock: FrozenClock
) -> None:
    conversation = world["conversation"]
    with db.session() as session:
        session.add(
            WhatsAppTemplate(
                channel_account_id=conversation.channel_account_id,
                name="order_shipped",
                language="es",
                category="UTILITY",
                components=[{"type": "BODY", "text": "Hola {{1}}, tu pedido {{2}} salió"}],
                status="APPROVED",
            )
        )
        session.commit()
    sent = {
        "id": "1",
        "name": "order_shipped",
        "language": "es",
        "parameters": ["Juan", "A-1"],
        "header_parameters": [],
    }
    original = outbound(
        db,
        conversation,
        "Hola Juan, tu pedido A-1 salió",
        "unknown",
        type="template",
        payload={"template": sent},
    )
    clock.advance(timedelta(hours=30))
    response = api.post(resend_path(conversation.id, original.id), headers=world["agent"])
    assert response.status_code == 201, response.text
    copy = response.json()
    assert (copy["type"], copy["content_text"]) == ("template", "Hola Juan, tu pedido A-1 salió")
    assert copy["payload"]["template"]["parameters"] == ["Juan", "A-1"]
    assert sends_queued(db) == [int(copy["id"])]
