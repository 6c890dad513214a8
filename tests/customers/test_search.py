"""Searching customers: name, email, phone in any written form, channel ids; visibility;
lookup by identity; link suggestions."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from max_server.db import Database
from max_server.models import CustomerIdentity
from tests.conftest import People, bearer
from tests.support import factories


def ids(api: TestClient, token: str, **params: Any) -> list[str]:
    response = api.get("/api/v1/customers", params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    return [c["id"] for c in response.json()["customers"]]


def identity(
    db: Database, customer_id: int | None, channel: str, external_id: str, name: str | None = None
) -> None:
    assert customer_id is not None
    with Session(db.engine) as session:
        session.add(
            CustomerIdentity(
                customer_id=customer_id, channel=channel, external_id=external_id, display_name=name
            )
        )
        session.commit()


@pytest.fixture
def book(db: Database) -> dict[str, str]:
    juan = factories.customer(db, "Juan López", email="juan@example.com", phone_e164="+525512345678")
    identity(db, juan.id, "chat_app", "cust_abc123", "Juanito")
    legacy = factories.customer(db, "Pedro Páramo", phone_e164=None)
    identity(db, legacy.id, "whatsapp", "5215587654321", "Pedro")
    gaucho = factories.customer(db, "Martín Fierro", phone_e164="+541123456789")
    other = factories.customer(db, "Ana", email="ana@example.org")
    return {"juan": str(juan.id), "pedro": str(legacy.id), "martin": str(gaucho.id), "ana": str(other.id)}


@pytest.mark.parametrize(
    ("query", "who"),
    [
        ("juan", "juan"),
        ("lópez", "juan"),
        ("juan@example", "juan"),
        ("+52 55 1234 5678", "juan"),
        ("525512345678", "juan"),
        ("5215512345678", "juan"),  # the legacy Mexican mobile form finds the current one
        ("55 1234 5678", "juan"),  # a national form
        ("cust_abc", "juan"),
        ("juanito", "juan"),
        ("+52 55 8765 4321", "pedro"),  # the current form finds a legacy WhatsApp identity
        ("+54 9 11 2345 6789", "martin"),  # Argentina's mobile 9
        ("example.org", "ana"),
    ],
)
def test_search_matches(api: TestClient, people: People, book: dict[str, str], query: str, who: str) -> None:
    _, admin = people.user("admin")
    assert ids(api, admin, q=query) == [book[who]]


def test_without_q_lists_everyone_in_pages(api: TestClient, people: People, book: dict[str, str]) -> None:
    _, admin = people.user("admin")
    first = api.get("/api/v1/customers", params={"limit": 3}, headers=bearer(admin)).json()
    assert len(first["customers"]) == 3
    second = api.get(
        "/api/v1/customers", params={"limit": 3, "cursor": first["next_cursor"]}, headers=bearer(admin)
    ).json()
    assert second["next_cursor"] is None
    everyone = [c["id"] for c in first["customers"] + second["customers"]]
    assert everyone == sorted(book.values(), key=int, reverse=True)
    by_id = {c["id"]: c for c in first["customers"] + second["customers"]}
    assert [i["external_id"] for i in by_id[book["juan"]]["identities"]] == ["cust_abc123"]


def test_agents_see_the_customers_of_conversations_they_see(
    api: TestClient, db: Database, people: People
) -> None:
    support, sales = people.team("support"), people.team("sales")
    ana, ana_token = people.user("agent", "Ana")
    beto, _ = people.user("agent", "Beto")
    people.join(support, ana)
    ours = factories.conversation(db, team=support, customer_row=factories.customer(db, "Ours"))
    assigned = factories.conversation(
        db, team=sales, assignee=ana, customer_row=factories.customer(db, "Mine")
    )
    factories.conversation(db, team=sales, assignee=beto, customer_row=factories.customer(db, "Theirs"))
    factories.customer(db, "Nobody's")
    assert ids(api, ana_token) == [str(assigned.customer_id), str(ours.customer_id)]
    assert ids(api, ana_token, q="Theirs") == []
    _, admin = people.user("admin")
    assert len(ids(api, admin)) == 4


def test_by_identity_for_other_systems(
    api: TestClient, db: Database, people: People, book: dict[str, str]
) -> None:
    _, admin = people.user("admin")
    _, agent = people.user("agent")

    def lookup(token: str, channel: str, external_id: str) -> Any:
        return api.get(
            "/api/v1/customers/by-identity",
            params={"channel": channel, "external_id": external_id},
            headers=bearer(token),
        )

    assert lookup(admin, "chat_app", "cust_abc123").json()["id"] == book["juan"]
    assert lookup(admin, "whatsapp", "+52 55 8765 4321").json()["id"] == book["pedro"]
    assert lookup(admin, "whatsapp", "5215587654321").json()["id"] == book["pedro"]
    missing = lookup(admin, "chat_app", "nobody")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "customer_not_found")
    assert lookup(agent, "chat_app", "cust_abc123").status_code == 404  # no conversation the agent sees
    assert lookup(admin, "email", "x").status_code == 422


def test_suggestions_share_a_phone_or_an_email(api: TestClient, db: Database, people: People) -> None:
    _, admin = people.user("admin")
    wa = factories.customer(db, "Juan", phone_e164="+5215512345678", email="Juan@Example.com")
    identity(db, wa.id, "whatsapp", "5215512345678")
    app_user = factories.customer(db, "Juan L", phone_e164="+525512345678")
    by_mail = factories.customer(db, "J. López", email="juan@example.com")
    argentine = factories.customer(db, "Otro", phone_e164="+541123456789")
    factories.customer(db, "Stranger", phone_e164="+14155550123")
    response = api.get(f"/api/v1/customers/{wa.id}/link-suggestions", headers=bearer(admin))
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None  # DESIGN §7's list shape; one bounded page
    found = {s["customer"]["id"]: s["reasons"] for s in response.json()["suggestions"]}
    assert found == {
        str(app_user.id): [{"kind": "phone", "value": "+525512345678"}],
        str(by_mail.id): [{"kind": "email", "value": "juan@example.com"}],
    }
    assert str(argentine.id) not in found
