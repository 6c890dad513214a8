"""Erasure (DESIGN §9): no personal data left in any table, the report counts unchanged, and the
customer's later messages start a fresh customer. Messages arrive through the real channels."""

from __future__ import annotations

import contextlib
import json
import warnings
from datetime import timedelta

from sqlalchemy import JSON, MetaData, String, Text, func, text
from sqlalchemy import select as sa_select
from sqlalchemy.exc import SAWarning
from sqlmodel import Session, col, select

from max_server.access import Actor
from max_server.channels.whatsapp import payloads as p
from max_server.db import Database
from max_server.models import (
    Conversation,
    Event,
    InboundEvent,
    Job,
    MediaFile,
    PendingStatus,
    SlaOutcome,
    SlaViolation,
    WebhookDelivery,
    WebhookSubscription,
)
from max_server.schemas import SlaPolicySet
from max_server.services import channels, events, notifications, sla_monitor, sla_policies
from max_server.services.channels import CHAT_APP_DEFAULT
from tests.channels.conftest import PHONE_NUMBER_ID
from tests.conftest import SYSTEM, People
from tests.customers.conftest import Desk

WA = "5215512345678"
CHAT_ID = "cust_erase_1"
NAME = "Juan López"
EMAIL = "juan.lopez@example.com"
SECRET_TEXT = "mi pedido 4471 no llegó a Calle Falsa 123"
# Everything about Juan that must not survive, as any table might hold it.
ERASED_VALUES = [
    NAME,
    "Juan L\\u00f3pez",
    EMAIL,
    WA,
    "525512345678",
    CHAT_ID,
    "Juanito Chat",
    SECRET_TEXT,
    "Calle Falsa",
    "foto de mi credencial",
    "desde la app: 9981",
    "TXN-ERASE-1",
    "TICKET-ERASE-1",
    "Juan no puede entrar",
    "cliente-frecuente-7781",
]
COUNTED = (Conversation, SlaViolation, SlaOutcome)


def leftovers(db: Database, needles: list[str]) -> list[tuple[str, str, str]]:
    """Every text and JSON column of every table (reflected from the database), searched."""
    metadata = MetaData()
    with warnings.catch_warnings():  # expression indexes are not reflected; columns are all we read
        warnings.filterwarnings("ignore", "Skipped unsupported reflection", SAWarning)
        metadata.reflect(bind=db.engine)
    found = []
    with db.engine.connect() as connection:
        for table in metadata.sorted_tables:
            columns = [
                c for c in table.columns if isinstance(c.type, String | Text | JSON) or "JSON" in str(c.type)
            ]
            if not columns:
                continue
            for row in connection.execute(sa_select(*columns)):
                for column, value in zip(columns, row, strict=True):
                    if value is None:
                        continue
                    haystack = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                    if isinstance(value, str) and value[:1] in "{[":
                        with contextlib.suppress(ValueError):
                            haystack += json.dumps(json.loads(value), ensure_ascii=False)
                    for needle in needles:
                        if needle.lower() in haystack.lower():
                            found.append((table.name, column.name, needle))
    return found


def counts(db: Database) -> dict[str, int]:
    with Session(db.engine) as session:
        out = {
            str(m.__tablename__): int(session.exec(select(func.count()).select_from(m)).one())
            for m in COUNTED
        }
        out["messages"] = int(session.execute(text("SELECT count(*) FROM messages")).scalar_one())
        out["customers"] = int(session.execute(text("SELECT count(*) FROM customers")).scalar_one())
    return out


def juan_everywhere(desk: Desk, db: Database, admin_id: int) -> tuple[str, str]:
    """Juan on WhatsApp and the Chat App, linked, with copies of his data in the usual places."""
    desk.wa(SECRET_TEXT, wa_id=WA, name=NAME)
    image = p.media_message(
        "image",
        WA,
        p.new_wamid(),
        "1480125473271",
        "image/jpeg",
        "c2hhMjU2",
        desk.clock.now().timestamp(),
        caption="foto de mi credencial",
    )
    desk.wa_message(image, wa_id=WA, name=NAME)
    desk.chat(CHAT_ID, "desde la app: 9981", name="Juanito Chat", email=EMAIL, phone="+52 55 1234 5678")
    primary = desk.customer_by("whatsapp", WA)["id"]
    secondary = desk.customer_by("chat_app", CHAT_ID)["id"]
    desk.ok("POST", f"/api/v1/customers/{primary}/link", json={"secondary_customer_id": secondary})
    desk.ok("POST", f"/api/v1/customers/{primary}/tags", json={"tags": ["cliente-frecuente-7781"]})
    desk.ok(
        "PUT",
        f"/api/v1/customers/{primary}/transactions/TXN-ERASE-1",
        json={"amount": "10", "currency": "MXN", "status": "paid", "occurred_at": "2026-01-01T00:00:00Z"},
    )
    desk.ok(
        "PUT",
        f"/api/v1/customers/{primary}/tickets/TICKET-ERASE-1",
        json={"subject": "Juan no puede entrar", "status": "open"},
    )
    conversations = desk.conversations(primary)
    with Session(db.engine) as session:
        for media in session.exec(select(MediaFile)).all():
            media.status, media.storage_key = (
                "stored",
                f"media/{media.conversation_id}/{media.message_id}/photo.jpg",
            )
            session.add(media)
        target = conversations[0]
        notifications.notify(
            session,
            [admin_id],
            "customer.rate_limited",
            f"{NAME} is held by the rate limit",
            {"customer_name": NAME, "conversation_id": target["id"]},
        )
        session.add(
            InboundEvent(
                channel="whatsapp",
                kind="contacts_only",
                payload={"contacts": [{"wa_id": WA, "profile": {"name": NAME}}]},
            )
        )
        session.add(
            PendingStatus(
                channel="whatsapp",
                channel_message_id="wamid.unknown",
                status="read",
                payload={"recipient_id": WA},
            )
        )
        events.sequence_pending(session)
        subscription = WebhookSubscription(
            url="https://hooks.example.com/max", events=["*"], secret="whsec_test"
        )
        session.add(subscription)
        session.flush()
        assert subscription.id is not None
        for event in session.exec(
            select(Event).where(col(Event.type).in_(["message.created", "conversation.created"]))
        ):
            assert event.id is not None
            session.add(
                WebhookDelivery(
                    subscription_id=subscription.id,
                    event_id=event.id,
                    event_type=event.type,
                    message_id=f"msg_{event.id}",
                    body=json.dumps(events.envelope(event)),
                )
            )
        session.commit()
    return primary, secondary


def support_with_an_sla(db: Database, people: People) -> None:
    """Team support answers both channels; normal conversations: FRT 1 minute, resolution 10."""
    people.team("support")
    with db.session() as session:
        sla_policies.set_policy(
            session,
            SYSTEM,
            SlaPolicySet(team="support", priority="normal", frt_target_s=60, resolution_target_s=600),
        )
    for account in (PHONE_NUMBER_ID, CHAT_APP_DEFAULT):
        with db.session() as session:
            channels.set_default_team(session, SYSTEM, account, "support")


def run_the_sla_monitor_for(desk: Desk, db: Database, minutes: int) -> None:
    """The monitor's tick once a minute, at the injected clock's time."""
    for _ in range(minutes):
        desk.clock.advance(timedelta(minutes=1))
        with db.session() as session:
            while sla_monitor.sweep_batch(session, desk.clock.now()):
                pass
            session.commit()


def test_erasure_leaves_no_personal_data_and_keeps_the_counts(
    desk: Desk, db: Database, people: People
) -> None:
    support_with_an_sla(db, people)
    primary, secondary = juan_everywhere(desk, db, desk.admin_id)
    desk.chat("cust_maria", "soy María y nada mío se borra", name="María Pérez")
    [maria] = desk.conversations(desk.customer_by("chat_app", "cust_maria")["id"])
    desk.ok("POST", f"/api/v1/conversations/{maria['id']}/messages", json={"text": "¡Hola María!"})
    run_the_sla_monitor_for(desk, db, 11)  # Juan's two conversations breach both targets
    assert len({(t, c) for t, c, _ in leftovers(db, ERASED_VALUES)}) > 15  # the search sees them all
    before = counts(db)
    report = desk.get("/api/v1/sla/report", team="support")
    frt, resolution = report["metrics"]["frt"], report["metrics"]["resolution"]
    assert (frt["met"], frt["breached"], resolution["met"], resolution["breached"]) == (1, 2, 0, 3)
    assert report["violations_total"] == 5

    linked_away = desk.call("POST", f"/api/v1/customers/{secondary}/erase")
    assert (linked_away.status_code, linked_away.json()["error"]["code"]) == (409, "customer_linked")
    _, agent = people.user("agent")
    assert desk.call("POST", f"/api/v1/customers/{primary}/erase", token=agent).status_code == 403

    result = desk.ok("POST", f"/api/v1/customers/{primary}/erase")
    assert sorted(result["customers"]) == sorted([primary, secondary])
    assert (result["conversations"], result["media"]) == (2, 1)
    assert (result["identities_deleted"], result["transactions_deleted"], result["tickets_deleted"]) == (
        2,
        1,
        1,
    )
    assert result["rows_scrubbed"] > 0

    assert leftovers(db, ERASED_VALUES) == []
    assert counts(db) == before
    assert desk.get("/api/v1/sla/report", team="support") == report
    assert leftovers(db, ["soy María y nada mío se borra", "María Pérez"]) != []  # others untouched
    shown = desk.get(f"/api/v1/customers/{primary}")
    assert (shown["name"], shown["email"], shown["phone_e164"], shown["identities"]) == (None, None, None, [])
    assert shown["erased_at"] is not None
    again = desk.call("POST", f"/api/v1/customers/{primary}/erase")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "customer_already_erased")

    with Session(db.engine) as session:
        media = session.exec(select(MediaFile)).one()
        assert (media.status, media.reason, media.storage_key) == ("expired", "erased", None)
        [job] = session.exec(select(Job).where(Job.kind == "media.delete")).all()
        assert job.payload == {
            "storage_keys": [f"media/{media.conversation_id}/{media.message_id}/photo.jpg"]
        }
        [entry] = session.execute(
            text("SELECT actor_user_id, target_id FROM audit_log WHERE action = 'customer.erased'")
        ).all()
        assert tuple(entry) == (desk.admin_id, primary)
        assert len(session.exec(select(Event).where(Event.type == "customer.erased")).all()) == 1
        texts = session.execute(
            text(
                "SELECT content_text FROM messages WHERE conversation_id IN "
                "(SELECT id FROM conversations WHERE customer_id = :c)"
            ),
            {"c": int(primary)},
        ).all()
        assert texts and all(t[0] is None for t in texts)

    # Juan writes again: a fresh customer, nothing linked to the erased one.
    desk.clock.advance(timedelta(minutes=1))
    desk.wa("hola de nuevo", wa_id=WA, name=NAME)
    fresh = desk.customer_by("whatsapp", WA)
    assert fresh["id"] not in (primary, secondary)
    assert fresh["name"] == NAME
    assert desk.get(f"/api/v1/customers/{fresh['id']}/context")["previous_conversations_total"] == 1


def test_erasure_through_the_service_is_audited_with_who(db: Database, people: People) -> None:
    from max_server.services import erasure
    from tests.support import factories

    user, _ = people.user("admin", "Eraser")
    customer = factories.customer(db, "Solo Cliente", email="solo@example.com")
    assert customer.id is not None
    actor = Actor(user_id=user.id, role="admin", label=f"user:{user.id}", name="Eraser")
    with db.session() as session:
        result = erasure.erase(session, actor, customer.id)
    assert result.erased_by is not None
    assert result.erased_by.name == "Eraser"
    assert leftovers(db, ["Solo Cliente", "solo@example.com"]) == []


def test_a_message_arriving_during_the_erasure_starts_a_fresh_customer(desk: Desk, db: Database) -> None:
    import threading

    from max_server.services import erasure

    desk.wa("hola", wa_id=WA, name=NAME)
    erased = int(desk.customer_by("whatsapp", WA)["id"])
    [conversation] = desk.conversations(str(erased))
    desk.close(conversation["id"])
    desk.new_conversation_later()
    erasing, proceed = threading.Event(), threading.Event()
    actor = Actor(user_id=desk.admin_id, role="admin", label="admin", name="Ada Admin")

    def erase_slowly() -> None:
        with db.session() as session:
            commit = session.commit

            def held_commit() -> None:
                erasing.set()
                proceed.wait(30)
                commit()

            session.commit = held_commit  # type: ignore[method-assign]
            erasure.erase(session, actor, erased)

    eraser = threading.Thread(target=erase_slowly)
    eraser.start()
    assert erasing.wait(30)
    message = threading.Thread(target=desk.wa, args=("otra vez",), kwargs={"wa_id": WA})
    message.start()
    message.join(timeout=1.5)
    assert message.is_alive()  # waiting for the erasure's locks
    proceed.set()
    eraser.join(timeout=30)
    message.join(timeout=30)
    fresh = desk.customer_by("whatsapp", WA)
    assert int(fresh["id"]) != erased
    assert desk.get(f"/api/v1/customers/{erased}")["identities"] == []
    assert leftovers(db, ["otra vez"]) != []  # the new message is the fresh customer's
    assert [c["customer"]["id"] for c in desk.conversations(fresh["id"])] == [fresh["id"]]
