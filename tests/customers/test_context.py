"""The context document, what other systems feed it (idempotent upserts), tags, and its cost."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, inspect

from max_server.access import Actor
from max_server.clock import FrozenClock
from max_server.db import Database
from max_server.services import context
from tests.conftest import People, bearer
from tests.support import factories


@pytest.fixture
def admin(people: People) -> str:
    return people.user("admin")[1]


def put(api: TestClient, token: str, path: str, body: dict[str, Any]) -> Any:
    return api.put(f"/api/v1/customers/{path}", json=body, headers=bearer(token))


def txn(amount: Any = "500.00", currency: str = "USD", **extra: Any) -> dict[str, Any]:
    return {
        "amount": amount,
        "currency": currency,
        "status": "completed",
        "occurred_at": "2026-01-03T12:00:00Z",
        **extra,
    }


def test_the_context_answers_the_seeds_document(
    api: TestClient, db: Database, admin: str, clock: FrozenClock
) -> None:
    customer = factories.customer(db, "Juan Lopez")
    conversations = []
    for n in range(25):
        clock.advance(minutes=1)
        conversations.append(
            factories.conversation(
                db,
                customer_row=customer,
                status="closed",
                close_reason="resolved",
                subject=f"Pregunta {n}",
            )
        )
    for n, amount in enumerate(("500.00", "250", "0.5")):
        assert (
            put(
                api,
                admin,
                f"{customer.id}/transactions/TXN-{n}",
                txn(amount, occurred_at=f"2026-01-0{n + 1}T12:00:00Z"),
            ).status_code
            == 201
        )
    put(
        api,
        admin,
        f"{customer.id}/transactions/TXN-JPY",
        txn(1500, "JPY", occurred_at="2025-12-01T00:00:00Z"),
    )
    put(api, admin, f"{customer.id}/tickets/TICKET-456", {"subject": "Login issue", "status": "open"})
    put(api, admin, f"{customer.id}/tickets/TICKET-123", {"subject": "Old", "status": "Solved"})
    api.post(
        f"/api/v1/customers/{customer.id}/tags",
        json={"tags": ["VIP Customer", "Prefers English"]},
        headers=bearer(admin),
    )

    document = api.get(f"/api/v1/customers/{customer.id}/context", headers=bearer(admin)).json()
    assert set(document) == {
        "customer",
        "previous_conversations",
        "previous_conversations_total",
        "recent_transactions",
        "open_tickets",
        "tags",
    }
    assert document["customer"] == {
        "id": str(customer.id),
        "name": "Juan Lopez",
        "email": None,
        "phone_e164": None,
        "identities": [],
    }
    assert document["previous_conversations_total"] == 25
    listed = document["previous_conversations"]
    assert len(listed) == context.DEFAULT_LIMIT
    assert [c["number"] for c in listed] == [c.number for c in reversed(conversations)][:20]
    assert set(listed[0]) == {
        "id",
        "number",
        "channel",
        "status",
        "close_reason",
        "subject",
        "created_at",
        "closed_at",
    }
    assert (listed[0]["status"], listed[0]["close_reason"], listed[0]["subject"]) == (
        "closed",
        "resolved",
        "Pregunta 24",
    )
    assert [(t["transaction_id"], t["amount"], t["currency"]) for t in document["recent_transactions"]] == [
        ("TXN-2", 0.5, "USD"),
        ("TXN-1", 250.0, "USD"),
        ("TXN-0", 500.0, "USD"),
        ("TXN-JPY", 1500.0, "JPY"),
    ]
    assert document["recent_transactions"][2]["amount_minor"] == 50000
    assert document["recent_transactions"][2]["created_at"] == "2026-01-01T12:00:00Z"
    assert [(t["ticket_id"], t["subject"], t["status"]) for t in document["open_tickets"]] == [
        ("TICKET-456", "Login issue", "open")
    ]
    assert document["tags"] == ["Prefers English", "VIP Customer"]

    fewer = api.get(
        f"/api/v1/customers/{customer.id}/context",
        params={"limit": 5, "exclude_conversation_id": conversations[-1].id},
        headers=bearer(admin),
    ).json()
    assert fewer["previous_conversations_total"] == 24
    assert [c["number"] for c in fewer["previous_conversations"]] == [
        c.number for c in reversed(conversations)
    ][1:6]


def test_upserts_are_idempotent_and_exact(api: TestClient, db: Database, admin: str, people: People) -> None:
    juan, ana = factories.customer(db, "Juan"), factories.customer(db, "Ana")
    first = put(api, admin, f"{juan.id}/transactions/TXN-1", txn("19.99"))
    assert (first.status_code, first.json()["outcome"]) == (201, "created")
    assert (first.json()["amount"], first.json()["amount_minor"]) == (19.99, 1999)
    again = put(api, admin, f"{juan.id}/transactions/TXN-1", txn("19.99"))
    assert (again.status_code, again.json()["outcome"]) == (200, "unchanged")
    # nothing changed, not even updated_at
    assert {**again.json(), "outcome": "created"} == first.json()
    refunded = put(
        api, admin, f"{juan.id}/transactions/TXN-1", txn(amount_minor=1999, amount=None, status="refunded")
    )
    assert (refunded.status_code, refunded.json()["status"]) == (200, "refunded")
    assert refunded.json()["outcome"] == "updated"
    elsewhere = put(api, admin, f"{ana.id}/transactions/TXN-1", txn("19.99"))
    assert (elsewhere.status_code, elsewhere.json()["error"]["code"]) == (
        409,
        "transaction_belongs_to_another_customer",
    )
    too_precise = put(api, admin, f"{juan.id}/transactions/TXN-2", txn("10.005"))
    assert (too_precise.status_code, too_precise.json()["error"]["code"]) == (422, "invalid_amount")
    assert (
        put(api, admin, f"{juan.id}/transactions/TXN-3", txn("1.000", "KWD")).json()["amount_minor"] == 1000
    )
    assert (
        put(
            api, admin, f"{juan.id}/transactions/TXN-4", txn("5", occurred_at="2026-01-03T12:00:00")
        ).status_code
        == 422
    )
    assert put(api, admin, f"{juan.id}/transactions/TXN-5", {**txn(), "amount_minor": 5}).status_code == 422
    assert put(api, admin, "999999/transactions/TXN-6", txn()).status_code == 404
    ticket = put(api, admin, f"{juan.id}/tickets/T-1", {"subject": "Login", "status": "open"})
    assert ticket.status_code == 201
    closed = put(api, admin, f"{juan.id}/tickets/T-1", {"subject": "Login", "status": "closed"})
    assert (closed.status_code, closed.json()["outcome"]) == (200, "updated")
    same = put(api, admin, f"{juan.id}/tickets/T-1", {"subject": "Login", "status": "closed"})
    assert (same.status_code, same.json()["outcome"]) == (200, "unchanged")
    _, agent = people.user("agent")
    assert put(api, agent, f"{juan.id}/tickets/T-2", {"subject": "x", "status": "open"}).status_code == 403


def test_tags_are_added_once_and_removed(api: TestClient, db: Database, admin: str) -> None:
    juan = factories.customer(db, "Juan")
    path = f"/api/v1/customers/{juan.id}/tags"
    assert api.post(path, json={"tags": ["VIP", " Prefers  English "]}, headers=bearer(admin)).json() == {
        "tags": ["Prefers English", "VIP"]
    }
    assert api.post(path, json={"tags": ["VIP"]}, headers=bearer(admin)).json() == {
        "tags": ["Prefers English", "VIP"]
    }
    assert api.delete(path, params={"tag": ["VIP", "absent"]}, headers=bearer(admin)).json() == {
        "tags": ["Prefers English"]
    }
    assert api.post(path, json={"tags": [""]}, headers=bearer(admin)).status_code == 422


@contextmanager
def counting(db: Database) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def test_the_cost_does_not_grow_with_history(db: Database, clock: FrozenClock) -> None:
    """No N+1: a customer with 60 conversations costs the same queries as one with 2."""
    admin = Actor.system("context-test")
    sizes = {}
    for n in (2, 60):
        customer = factories.customer(db, f"c{n}")
        for _ in range(n):
            factories.conversation(db, customer_row=customer, status="closed")
        assert customer.id is not None
        with db.session(write=False) as session, counting(db) as statements:
            built = context.build(session, admin, customer.id)
        assert built.previous_conversations_total == n
        sizes[n] = len([s for s in statements if s.lstrip().upper().startswith("SELECT")])
    assert sizes[2] == sizes[60] == 5  # customer, identities+tags, conversations, transactions, tickets


def test_the_context_index_exists(db: Database) -> None:
    indexes = {ix["name"]: ix["column_names"] for ix in inspect(db.engine).get_indexes("conversations")}
    assert indexes["ix_conversations_customer_created"] == ["customer_id", "created_at", "id"]
    for table, name, columns in (
        ("transactions", "ix_transactions_customer_occurred", ["customer_id", "occurred_at"]),
        ("tickets", "ix_tickets_customer_status", ["customer_id", "status"]),
        ("customer_identities", "ix_customer_identities_customer_id", ["customer_id"]),
    ):
        found = {ix["name"]: ix["column_names"] for ix in inspect(db.engine).get_indexes(table)}
        assert found[name] == columns
