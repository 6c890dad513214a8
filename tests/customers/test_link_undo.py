"""A WhatsApp customer and a Chat App customer (the same person) are linked, seen as one, and
the link is undone exactly. Messages arrive through the real channels."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from max_server.db import Database
from tests.customers.conftest import Desk

WA = "5215512345678"
CHAT_ID = "cust_abc123"


def snapshot(db: Database, customer_id: str) -> dict[str, Any]:
    """Everything a customer owns, straight from the tables."""
    columns = {
        "customer": "name, email, phone_e164, is_active, merged_into_id, erased_at FROM customers WHERE id",
        "identities": "id, channel, external_id, display_name FROM customer_identities WHERE customer_id",
        "tags": "tag FROM customer_tags WHERE customer_id",
        "conversations": "id, number, status, close_reason, closed_at, assignee_id, channel_account_id, "
        "identity_id FROM conversations WHERE customer_id",
        "transactions": "id, external_id, amount_minor, currency, status, occurred_at FROM transactions "
        "WHERE customer_id",
        "tickets": "id, external_id, subject, status, url FROM tickets WHERE customer_id",
    }
    queries = {key: f"SELECT {sql} = :c ORDER BY 1" for key, sql in columns.items()}
    with db.session(write=False) as session:
        return {
            key: [tuple(row) for row in session.execute(text(sql), {"c": int(customer_id)})]
            for key, sql in queries.items()
        }


def two_conversations_on_whatsapp(desk: Desk) -> dict[str, Any]:
    desk.wa("hola, mi pedido no llegó")
    customer = desk.customer_by("whatsapp", WA)
    [first] = desk.conversations(customer["id"])
    desk.close(first["id"])
    desk.new_conversation_later()
    desk.wa("sigo sin pedido")
    assert len(desk.conversations(customer["id"])) == 2
    return customer


def two_conversations_on_chat_app(desk: Desk) -> dict[str, Any]:
    who = {"name": "Juan Lopez", "email": "Juan@Example.com", "phone": "+52 55 1234 5678"}
    desk.chat(CHAT_ID, "hola desde la app", **who)
    customer = desk.customer_by("chat_app", CHAT_ID)
    for conversation in desk.conversations(customer["id"]):
        desk.close(conversation["id"])
    desk.new_conversation_later()
    desk.chat(CHAT_ID, "¿me ayudan con la factura?", **who)
    conversations = desk.conversations(customer["id"])
    assert len(conversations) == 2
    for conversation in conversations:
        if conversation["status"] != "closed":
            desk.close(conversation["id"])
    return customer


def feed(
    desk: Desk, customer_id: str, tags: list[str], transaction: str, amount: str, ticket: str | None
) -> None:
    desk.ok("POST", f"/api/v1/customers/{customer_id}/tags", json={"tags": tags})
    desk.ok(
        "PUT",
        f"/api/v1/customers/{customer_id}/transactions/{transaction}",
        json={
            "amount": amount,
            "currency": "USD",
            "status": "completed",
            "occurred_at": "2026-01-03T12:00:00Z",
        },
    )
    if ticket:
        desk.ok(
            "PUT",
            f"/api/v1/customers/{customer_id}/tickets/{ticket}",
            json={"subject": "Login issue", "status": "open", "url": "https://help.example.com/456"},
        )


def test_link_whatsapp_and_chat_app_customers_then_undo_restores_both(desk: Desk, db: Database) -> None:
    wa_customer = two_conversations_on_whatsapp(desk)
    chat_customer = two_conversations_on_chat_app(desk)
    primary, secondary = wa_customer["id"], chat_customer["id"]
    assert primary != secondary
    feed(desk, primary, ["VIP", "Prefers Spanish"], "TXN-123", "500.00", None)
    feed(desk, secondary, ["VIP", "Beta tester"], "TXN-124", "250.50", "TICKET-456")
    desk.new_conversation_later()  # past the reopen window of the closed Chat App conversation
    before = {primary: snapshot(db, primary), secondary: snapshot(db, secondary)}
    assert before[primary]["customer"][0][:3] == ("Juan López", None, "+5215512345678")
    assert before[secondary]["customer"][0][:3] == ("Juan Lopez", "juan@example.com", "+525512345678")

    # The same phone written two ways (Mexico's legacy 521) makes them a suggestion.
    [suggestion] = desk.get(f"/api/v1/customers/{primary}/link-suggestions")["suggestions"]
    assert suggestion["customer"]["id"] == secondary
    assert suggestion["reasons"] == [{"kind": "phone", "value": "+525512345678"}]

    link = desk.ok("POST", f"/api/v1/customers/{primary}/link", json={"secondary_customer_id": secondary})
    assert (link["primary_customer_id"], link["secondary_customer_id"]) == (primary, secondary)
    assert link["linked_by"]["name"] == "Ada Admin"
    assert link["moved"] == {"identities": 1, "conversations": 2, "transactions": 1, "tickets": 1}
    assert link["fields_filled"] == ["email"]  # the primary keeps its name and phone
    assert link["tags_added"] == ["Beta tester"]

    context = desk.get(f"/api/v1/customers/{primary}/context")
    assert context["customer"]["name"] == "Juan López"
    assert context["customer"]["email"] == "juan@example.com"
    assert {(i["channel"], i["external_id"]) for i in context["customer"]["identities"]} == {
        ("whatsapp", WA),
        ("chat_app", CHAT_ID),
    }
    all_four = {row[0] for row in before[primary]["conversations"] + before[secondary]["conversations"]}
    assert {int(c["id"]) for c in context["previous_conversations"]} == all_four
    assert context["previous_conversations_total"] == 4
    assert {c["channel"] for c in context["previous_conversations"]} == {"whatsapp", "chat_app"}
    assert context["tags"] == ["Beta tester", "Prefers Spanish", "VIP"]
    assert sorted(t["transaction_id"] for t in context["recent_transactions"]) == ["TXN-123", "TXN-124"]
    assert [t["ticket_id"] for t in context["open_tickets"]] == ["TICKET-456"]
    gone = desk.get(f"/api/v1/customers/{secondary}")
    assert (gone["is_active"], gone["merged_into_id"]) == (False, primary)
    assert desk.get(f"/api/v1/customers/{secondary}/context")["customer"]["id"] == primary
    assert desk.customer_by("chat_app", CHAT_ID)["id"] == primary

    # After the link, the Chat App identity writes again: the new conversation is the primary's.
    desk.chat(CHAT_ID, "¿ya me ven como una sola persona?", name="Juan Lopez")
    later = [c for c in desk.conversations(primary) if c["status"] != "closed" and c["channel"] == "chat_app"]
    assert len(later) == 1

    undone = desk.ok("POST", f"/api/v1/customers/links/{link['link_id']}/undo")
    assert undone["unlinked_at"] is not None
    assert undone["unlinked_by"]["name"] == "Ada Admin"
    after = {primary: snapshot(db, primary), secondary: snapshot(db, secondary)}
    assert after[primary] == before[primary]
    for key in ("customer", "identities", "tags", "transactions", "tickets"):
        assert after[secondary][key] == before[secondary][key], key
    # Its conversations, plus the one its returning identity opened after the link.
    assert after[secondary]["conversations"][:2] == before[secondary]["conversations"]
    assert [row[0] for row in after[secondary]["conversations"][2:]] == [int(later[0]["id"])]
    assert desk.customer_by("chat_app", CHAT_ID)["id"] == secondary

    listed = desk.get(f"/api/v1/customers/{primary}/links")["links"]
    assert [(x["link_id"], x["unlinked_at"] is not None) for x in listed] == [(link["link_id"], True)]
    with db.session(write=False) as session:
        kinds = [
            r[0]
            for r in session.execute(
                # customer.tagged: the tags this test gives its customers (not part of the link)
                text("SELECT type FROM events WHERE type LIKE 'customer.%' AND type <> 'customer.tagged'")
            )
        ]
        actions = {r[0] for r in session.execute(text("SELECT action FROM audit_log"))}
    assert kinds == ["customer.linked", "customer.unlinked"]
    assert {"customer.linked", "customer.linked_into", "customer.unlinked"} <= actions

    # Undone means undone: a second undo is refused.
    again = desk.call("POST", f"/api/v1/customers/links/{link['link_id']}/undo")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "link_already_undone")
