"""Erasure removes one person's data and nobody else's: not a customer it was once linked with
(the link undone), not an agent or another customer who shares a name, email or number."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select

from max_server.db import Database
from max_server.models import Event, IdentityLink, PendingStatus
from tests.customers.conftest import Desk
from tests.customers.test_erasure import leftovers

ROSA_WA = "5215500000001"
BRUNO = ["Bruno Diaz", "bruno@example.com", "cust_bruno"]


def events_about(db: Database, conversation_id: str, type_: str) -> list[dict[str, Any]]:
    with db.session(write=False) as session:
        rows = session.exec(select(Event).where(Event.type == type_).order_by(col(Event.id))).all()
    return [row.data for row in rows if row.data.get("id") == conversation_id]


def test_erasing_a_customer_leaves_the_one_it_was_once_linked_with_alone(desk: Desk, db: Database) -> None:
    desk.wa("hola soy rosa", wa_id=ROSA_WA, name="Rosa Mar")
    desk.chat("cust_bruno", "hola soy bruno", name="Bruno Diaz", email="bruno@example.com")
    rosa = desk.customer_by("whatsapp", ROSA_WA)["id"]
    bruno = desk.customer_by("chat_app", "cust_bruno")["id"]
    link = desk.ok("POST", f"/api/v1/customers/{rosa}/link", json={"secondary_customer_id": bruno})
    desk.ok("POST", f"/api/v1/customers/links/{link['link_id']}/undo")
    [bruno_conversation] = desk.conversations(bruno)
    desk.ok("POST", f"/api/v1/conversations/{bruno_conversation['id']}/assign", json={"user_id": "me"})
    bruno_before = sorted(leftovers(db, BRUNO))
    [assigned] = events_about(db, bruno_conversation["id"], "conversation.assigned")
    assert assigned["customer"]["name"] == "Bruno Diaz"  # what must survive Rosa's erasure

    desk.ok("POST", f"/api/v1/customers/{rosa}/erase")

    assert leftovers(db, ["Rosa Mar", ROSA_WA, "hola soy rosa"]) == []
    assert sorted(leftovers(db, BRUNO)) == bruno_before  # his identity shown with Rosa's included
    assert events_about(db, bruno_conversation["id"], "conversation.assigned") == [assigned]
    shown = desk.get(f"/api/v1/customers/{bruno}")
    assert (shown["name"], shown["email"], shown["is_active"]) == ("Bruno Diaz", "bruno@example.com", True)
    assert [i["external_id"] for i in shown["identities"]] == ["cust_bruno"]
    with db.session(write=False) as session:
        journal = session.exec(select(IdentityLink)).one()
        linked = session.exec(select(Event).where(Event.type == "customer.linked")).one().data
    # The link's event showed both: Rosa's person object is emptied, Bruno's kept.
    assert (linked["primary"]["id"], linked["primary"]["name"]) == (rosa, None)
    assert [i["external_id"] for i in linked["primary"]["identities"]] == ["cust_bruno"]  # his, now
    assert (linked["secondary"]["id"], linked["secondary"]["name"]) == (bruno, "Bruno Diaz")
    # The undone link keeps Bruno's half: the snapshot of him, and the email he lent Rosa.
    assert journal.secondary_snapshot["secondary"]["name"] == "Bruno Diaz"
    assert "primary" not in journal.secondary_snapshot
    assert journal.primary_changes["email"] == {"before": None, "after": "bruno@example.com"}


def test_an_agent_or_another_customer_sharing_a_name_or_number_keeps_it(desk: Desk, db: Database) -> None:
    # A customer called like the admin agent ("Ada Admin"), and another customer, Bruno, whose
    # conversation the agent took, whose WhatsApp number the customer also gave in the Chat App.
    desk.chat("cust_ada", "hola", name="Ada Admin", phone="+52 55 1234 5678")
    desk.wa("soy bruno", wa_id="5215512345678", name="Bruno Diaz")
    ada = desk.customer_by("chat_app", "cust_ada")["id"]
    bruno = desk.customer_by("whatsapp", "5215512345678")["id"]
    [bruno_conversation] = desk.conversations(bruno)
    desk.ok("POST", f"/api/v1/conversations/{bruno_conversation['id']}/assign", json={"user_id": "me"})
    with db.session() as session:  # a status for one of Bruno's messages, waiting for its wamid
        session.add(
            PendingStatus(
                channel="whatsapp",
                channel_message_id="wamid.later",
                status="read",
                payload={"recipient_id": "5215512345678"},
            )
        )
        session.commit()
    [assigned] = events_about(db, bruno_conversation["id"], "conversation.assigned")
    assert assigned["assignee"]["name"] == "Ada Admin"

    desk.ok("POST", f"/api/v1/customers/{ada}/erase")

    assert events_about(db, bruno_conversation["id"], "conversation.assigned") == [assigned]
    with db.session(write=False) as session:
        pending = session.exec(select(PendingStatus)).one()
        ada_events = [
            e.data
            for e in session.exec(select(Event).where(Event.type == "conversation.created"))
            if e.data["customer"]["id"] == ada
        ]
    assert pending.payload == {"recipient_id": "5215512345678"}
    assert [e["customer"]["name"] for e in ada_events] == [None]  # hers is gone all the same
    assert desk.get(f"/api/v1/customers/{bruno}")["phone_e164"] == "+5215512345678"
    assert leftovers(db, ["cust_ada"]) == []
