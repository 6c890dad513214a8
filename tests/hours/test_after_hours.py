"""After hours over real webhooks and the Graph API sandbox: a new conversation outside its team's
hours gets the after-hours message once (a system message, not a first response) and priority
low; a failing send never blocks ingest; teams without hours are always open."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from max_server.access import Actor
from max_server.channels.whatsapp.sandbox import Sandbox
from max_server.clock import FrozenClock
from max_server.db import Database
from max_server.handlers import hours as after_hours_handler
from max_server.jobs.worker import Worker
from max_server.models import Conversation, Event, Message
from max_server.schemas import HoursSet
from max_server.services import channels, inbound
from max_server.services import hours as hours_service
from max_server.settings import Settings
from tests.channels.conftest import PHONE_NUMBER_ID, WhatsApp
from tests.conftest import People, bearer
from tests.support import factories
from tests.support.live import LiveServer
from tests.support.sandbox_fixtures import sandbox_fixture, sandbox_graph_url  # noqa: F401

ADMIN = Actor.system("tests")
MESSAGE = "Hola {{customer_first_name|}}, abrimos a las 9:00 (caso #{{conversation_number}}). {{agent_name|}}"
MONDAY_NIGHT = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)  # Monday 21:00 in Mexico City
TUESDAY_MORNING = datetime(2026, 3, 3, 16, 0, tzinfo=UTC)  # Tuesday 10:00


@pytest.fixture
def support(db: Database, people: People, live: LiveServer) -> Any:
    """Mon–Fri 09:00–18:00 in Mexico City with an after-hours message; new WhatsApp
    conversations start in this team."""
    team = people.team("support", name="Soporte", timezone="America/Mexico_City")
    with db.session() as session:
        hours_service.set_days(
            session, ADMIN, "support", HoursSet(days=[0, 1, 2, 3, 4], opens="09:00", closes="18:00")
        )
    with db.session() as session:
        hours_service.set_message(session, ADMIN, "support", MESSAGE)
    with db.session() as session:
        channels.set_default_team(session, ADMIN, PHONE_NUMBER_ID, "support")
    return team


def conversations(db: Database) -> list[Conversation]:
    with db.session(write=False) as session:
        return list(session.exec(select(Conversation).order_by(col(Conversation.id))))


def outbound(db: Database, conversation_id: int) -> list[Message]:
    with db.session(write=False) as session:
        return list(
            session.exec(
                select(Message)
                .where(Message.conversation_id == conversation_id, Message.direction == "outbound")
                .order_by(col(Message.id))
            )
        )


def test_a_new_conversation_at_night_gets_the_message_once(
    support: Any,
    whatsapp: WhatsApp,
    worker: Worker,
    sandbox: Sandbox,
    clock: FrozenClock,
    db: Database,
    live: LiveServer,
    people: People,
) -> None:
    clock.set(MONDAY_NIGHT)
    whatsapp.text("hola, ¿siguen ahí?", ts=clock.now().timestamp())
    [conversation] = conversations(db)
    assert (conversation.after_hours, conversation.priority) == (True, "low")
    worker.drain()
    [reply] = outbound(db, conversation.id)  # type: ignore[arg-type]
    assert (reply.sender_type, reply.sender_user_id, reply.delivery_status) == ("system", None, "sent")
    assert reply.content_text == f"Hola Juan, abrimos a las 9:00 (caso #{conversation.number}). "
    assert [m["text"]["body"] for m in sandbox.sent_messages()] == [reply.content_text]
    # Not a first response, and nobody got the conversation.
    [after] = conversations(db)
    assert (after.first_response_at, after.assignee_id, after.status) == (None, None, "queued")

    clock.advance(minutes=5)
    whatsapp.text("¿hola?", ts=clock.now().timestamp())
    worker.drain()
    assert len(outbound(db, conversation.id)) == 1  # type: ignore[arg-type]
    assert len(sandbox.sent_messages()) == 1
    with db.session(write=False) as session:
        updates = session.exec(select(Event).where(Event.type == "conversation.updated")).all()
    assert [e.data["priority"] for e in updates] == ["low"]
    assert updates[0].data["after_hours"] is True

    # An agent's reply is the first response; the conversation is theirs.
    agent, token = people.user("agent", "Ana")
    people.join(support, agent)
    clock.set(TUESDAY_MORNING)
    sent = httpx.post(
        f"{live.url}/api/v1/conversations/{conversation.id}/messages",
        json={"text": "Buen día"},
        headers=bearer(token),
    )
    assert sent.status_code == 201
    [answered] = conversations(db)
    assert answered.first_response_at == TUESDAY_MORNING
    assert answered.assignee_id == agent.id


def test_inside_hours_and_teams_without_hours_get_nothing(
    support: Any, whatsapp: WhatsApp, worker: Worker, sandbox: Sandbox, clock: FrozenClock, db: Database
) -> None:
    clock.set(TUESDAY_MORNING)
    whatsapp.text("hola", wa_id="5215511111111", ts=clock.now().timestamp())
    with db.session() as session:  # no weekly hours: always open, even at night
        hours_service.clear(session, ADMIN, "support")
    clock.set(MONDAY_NIGHT.replace(day=10))
    whatsapp.text("hola", wa_id="5215522222222", ts=clock.now().timestamp())
    worker.drain()
    found = conversations(db)
    assert [(c.after_hours, c.priority) for c in found] == [(False, "normal"), (False, "normal")]
    assert sandbox.sent_messages() == []


def test_a_failing_send_never_blocks_ingest(
    support: Any, whatsapp: WhatsApp, worker: Worker, sandbox: Sandbox, clock: FrozenClock, db: Database
) -> None:
    clock.set(MONDAY_NIGHT)
    sandbox.refuse_next(131026, "Message undeliverable")
    response = whatsapp.message(  # the webhook is answered 200 whatever the send will do
        {
            "from": "5215533333333",
            "id": "wamid.NIGHT",
            "timestamp": str(int(clock.now().timestamp())),
            "type": "text",
            "text": {"body": "hola"},
        },
        wa_id="5215533333333",
    )
    assert response.status_code == 200
    [conversation] = conversations(db)
    assert conversation.after_hours is True
    worker.drain()
    [reply] = outbound(db, conversation.id)  # type: ignore[arg-type]
    assert reply.delivery_status == "failed"
    assert reply.error is not None and reply.error["code"] == 131026
    # The customer's next message is stored as usual, and the reply is not tried again.
    clock.advance(minutes=1)
    whatsapp.text("¿hola?", wa_id="5215533333333", ts=clock.now().timestamp())
    worker.drain()
    with db.session(write=False) as session:
        inbound_texts = session.exec(
            select(Message.content_text).where(Message.direction == "inbound").order_by(col(Message.id))
        ).all()
    assert inbound_texts == ["hola", "¿hola?"]
    assert len(outbound(db, conversation.id)) == 1  # type: ignore[arg-type]


def test_rate_limited_messages_and_answered_conversations_are_skipped(
    support: Any, db: Database, settings: Settings, clock: FrozenClock
) -> None:
    clock.set(MONDAY_NIGHT)
    for flags, expected in ((["rate_limited"], False), ([], True)):
        row = factories.conversation(db, team=support, customer_row=factories.customer(db, str(flags)))
        message = factories.message(db, row, "hola", flags=flags)
        with db.session() as session:
            conversation = session.get(Conversation, row.id)
            stored = session.get(Message, message.id)
            assert conversation is not None and stored is not None
            after_hours_handler.after_hours(
                session, inbound.Ingested(stored, conversation, True, False), settings, clock.now()
            )
            session.commit()
            assert conversation.after_hours is expected
    # The job does nothing for a conversation an agent answered (or closed) meanwhile.
    answered = factories.conversation(
        db, team=support, customer_row=factories.customer(db, "Ya atendido"), first_response_at=clock.now()
    )
    with db.session() as session:
        assert hours_service.send_after_hours_reply(session, answered.id) is None  # type: ignore[arg-type]
    assert outbound(db, answered.id) == []  # type: ignore[arg-type]


def test_the_team_s_after_hours_message_follows_the_hours_rules_when_patched(
    support: Any, live: LiveServer, people: People, db: Database, worker: Worker, clock: FrozenClock
) -> None:
    _, admin = people.user("admin")
    url = f"{live.url}/api/v1/teams/support"
    for text, code in (
        ("Hola {{customer_name, volvemos a las 9", "invalid_template"),  # would fail every send
        ("Tu pedido {{order_id}} sigue en camino", "unknown_variables"),  # nobody can fill it
    ):
        refused = httpx.patch(url, json={"after_hours_message": text}, headers=bearer(admin))
        assert (refused.status_code, refused.json()["error"]["code"]) == (422, code), text
    assert httpx.get(url, headers=bearer(admin)).json()["after_hours_message"] == MESSAGE
    kept = httpx.patch(
        url,
        json={"after_hours_message": "  Volvemos a las 9, {{customer_first_name|}}.  "},
        headers=bearer(admin),
    )
    assert (kept.status_code, kept.json()["after_hours_message"]) == (
        200,
        "Volvemos a las 9, {{customer_first_name|}}.",
    )
    removed = httpx.patch(url, json={"after_hours_message": "   "}, headers=bearer(admin))
    assert (removed.status_code, removed.json()["after_hours_message"]) == (200, None)


def test_a_malformed_message_saved_before_the_checks_is_skipped_not_retried(
    support: Any, db: Database, sandbox: Sandbox, clock: FrozenClock
) -> None:
    with db.session() as session:
        team = session.get(type(support), support.id)
        team.after_hours_message = "Hola {{customer_name"  # written directly, as before validation existed
        session.add(team)
        session.commit()
    clock.set(MONDAY_NIGHT)
    row = factories.conversation(db, team=support)
    with db.session() as session:
        assert hours_service.send_after_hours_reply(session, row.id) is None  # type: ignore[arg-type]
    assert outbound(db, row.id) == [] and sandbox.sent_messages() == []  # type: ignore[arg-type]
