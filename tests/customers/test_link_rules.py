"""What a link refuses, who may link and undo, and two open conversations on one account."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import select

from max_server.db import Database
from max_server.models import Conversation, Customer, Event
from tests.conftest import People, bearer
from tests.support import factories


def post(api: TestClient, token: str, path: str, body: Any = None) -> Any:
    return api.post(path, json=body, headers=bearer(token))


def link(api: TestClient, token: str, primary: object, secondary: object) -> Any:
    return post(api, token, f"/api/v1/customers/{primary}/link", {"secondary_customer_id": str(secondary)})


def code(response: Any) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def test_refusals_are_clear(api: TestClient, db: Database, people: People) -> None:
    _, admin = people.user("admin")
    a, b, c = (factories.customer(db, name) for name in ("Ana", "Beto", "Caro"))
    assert code(link(api, admin, a.id, a.id)) == (422, "cannot_link_to_itself")
    assert code(link(api, admin, a.id, 999999)) == (404, "customer_not_found")
    assert link(api, admin, a.id, b.id).status_code == 201
    assert code(link(api, admin, a.id, b.id)) == (409, "already_linked")
    cycle = link(api, admin, b.id, a.id)
    assert code(cycle) == (409, "link_cycle")
    assert "cycle" in cycle.json()["error"]["message"]
    assert code(link(api, admin, c.id, b.id)) == (409, "customer_inactive")
    assert link(api, admin, c.id, a.id).status_code == 201  # a chain: b -> a -> c
    assert code(link(api, admin, b.id, c.id)) == (409, "link_cycle")
    with db.session(write=False) as session:
        states = {r.name: (r.is_active, r.merged_into_id) for r in session.exec(select(Customer))}
    assert states == {"Ana": (False, c.id), "Beto": (False, a.id), "Caro": (True, None)}


def test_linking_into_an_inactive_primary_is_refused(api: TestClient, db: Database, people: People) -> None:
    _, admin = people.user("admin")
    a, b, c = (factories.customer(db, name) for name in ("Ana", "Beto", "Caro"))
    assert link(api, admin, a.id, b.id).status_code == 201  # Beto is now inactive, linked into Ana
    refused = link(api, admin, b.id, c.id)  # into Beto: no cycle (Caro is in no chain), just inactive
    assert code(refused) == (409, "customer_inactive")
    error = refused.json()["error"]
    assert error["details"] == {"customer_id": str(b.id), "merged_into_id": str(a.id)}
    assert f"customer {b.id} is not active (it was linked into customer {a.id})" in error["message"]
    with db.session(write=False) as session:
        states = {r.name: (r.is_active, r.merged_into_id) for r in session.exec(select(Customer))}
    assert states == {"Ana": (True, None), "Beto": (False, a.id), "Caro": (True, None)}  # nothing moved


def test_undo_goes_in_reverse_order(api: TestClient, db: Database, people: People) -> None:
    _, admin = people.user("admin")
    a, b, c = (factories.customer(db, name) for name in ("Ana", "Beto", "Caro"))
    first = link(api, admin, a.id, b.id).json()["link_id"]
    second = link(api, admin, c.id, a.id).json()["link_id"]
    blocked = post(api, admin, f"/api/v1/customers/links/{first}/undo")
    assert code(blocked) == (409, "undo_blocked")
    assert blocked.json()["error"]["details"] == {"blocking_link_id": second}
    assert post(api, admin, f"/api/v1/customers/links/{second}/undo").status_code == 200
    assert post(api, admin, f"/api/v1/customers/links/{first}/undo").status_code == 200
    with db.session(write=False) as session:
        assert all(r.is_active and r.merged_into_id is None for r in session.exec(select(Customer)))


def test_agents_link_only_customers_they_see_and_undo_their_own(
    api: TestClient, db: Database, people: People
) -> None:
    support, sales = people.team("support"), people.team("sales")
    ana, ana_token = people.user("agent", "Ana")
    beto, beto_token = people.user("agent", "Beto")
    _, lead = people.user("supervisor", "Lead")
    for member in (ana, beto):
        people.join(support, member)
    mine = factories.conversation(db, team=support, customer_row=factories.customer(db, "Juan WhatsApp"))
    also_mine = factories.conversation(db, team=support, customer_row=factories.customer(db, "Juan App"))
    theirs = factories.conversation(db, team=sales, customer_row=factories.customer(db, "Someone"))
    assert code(link(api, ana_token, mine.customer_id, theirs.customer_id)) == (404, "customer_not_found")
    assert code(api.get(f"/api/v1/customers/{theirs.customer_id}", headers=bearer(ana_token))) == (
        404,
        "customer_not_found",
    )
    made = link(api, ana_token, mine.customer_id, also_mine.customer_id)
    assert made.status_code == 201, made.text
    link_id = made.json()["link_id"]
    assert code(post(api, beto_token, f"/api/v1/customers/links/{link_id}/undo")) == (403, "not_allowed")
    assert post(api, lead, f"/api/v1/customers/links/{link_id}/undo").status_code == 404  # lead sees neither
    people.join(support, people.user("supervisor", "Sup")[0], "supervisor")
    assert post(api, ana_token, f"/api/v1/customers/links/{link_id}/undo").status_code == 200
    listed = api.get("/api/v1/customers/links", headers=bearer(beto_token)).json()["links"]
    assert [x["link_id"] for x in listed] == [link_id]
    assert api.get("/api/v1/customers/links", headers=bearer(lead)).json()["links"] == []


def test_two_open_conversations_on_one_account_close_the_secondarys_and_undo_reopens_it(
    api: TestClient, db: Database, people: People
) -> None:
    team = people.team("support")
    agent, _ = people.user("agent", "Ana")
    people.join(team, agent)
    _, admin = people.user("admin")
    account = factories.channel_account(db)
    kept = factories.conversation(db, team=team, account=account, customer_row=factories.customer(db, "A"))
    duplicate = factories.conversation(
        db, team=team, account=account, assignee=agent, customer_row=factories.customer(db, "B")
    )
    made = link(api, admin, kept.customer_id, duplicate.customer_id)
    assert made.status_code == 201, made.text
    assert made.json()["closed_duplicates"] == [str(duplicate.id)]
    with db.session(write=False) as session:
        closed = session.get(Conversation, duplicate.id)
        assert closed is not None
        assert (closed.status, closed.close_reason, closed.customer_id) == (
            "closed",
            "duplicate",
            kept.customer_id,
        )
        types = [e.type for e in session.exec(select(Event).order_by(Event.id))]  # type: ignore[arg-type]
    assert "conversation.closed" in types
    undone = post(api, admin, f"/api/v1/customers/links/{made.json()['link_id']}/undo")
    assert undone.status_code == 200, undone.text
    assert undone.json()["not_reopened"] == []
    with db.session(write=False) as session:
        restored = session.get(Conversation, duplicate.id)
        assert restored is not None
        assert (restored.status, restored.close_reason, restored.closed_at, restored.assignee_id) == (
            "assigned",
            None,
            None,
            agent.id,
        )
        assert restored.customer_id == duplicate.customer_id
