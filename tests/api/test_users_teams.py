"""Users, tokens and teams through the API, with the error envelope."""

from fastapi.testclient import TestClient

from max_server.db import Database
from tests.conftest import People, bearer
from tests.support import factories


def test_admin_manages_users_and_teams(api: TestClient, people: People) -> None:
    _, admin = people.user("admin")
    created = api.post(
        "/api/v1/users",
        json={"name": "Ana Ruiz", "email": "Ana@Example.com", "role": "agent"},
        headers=bearer(admin),
    )
    assert created.status_code == 201
    body = created.json()
    assert body["user"]["email"] == "ana@example.com"
    assert body["token"].startswith("max_")
    ana_id = body["user"]["id"]
    assert isinstance(ana_id, str)

    me = api.get("/api/v1/me", headers=bearer(body["token"])).json()
    assert (me["name"], me["role"], me["teams"]) == ("Ana Ruiz", "agent", [])

    dup = api.post("/api/v1/users", json={"name": "X", "email": "ana@example.com"}, headers=bearer(admin))
    assert (dup.status_code, dup.json()["error"]["code"]) == (409, "email_taken")

    team = api.post(
        "/api/v1/teams", json={"slug": "support", "timezone": "America/Mexico_City"}, headers=bearer(admin)
    )
    assert team.status_code == 201
    assert team.json()["name"] == "Support"
    assert api.post("/api/v1/teams", json={"slug": "support"}, headers=bearer(admin)).status_code == 409
    bad_tz = api.post("/api/v1/teams", json={"slug": "x", "timezone": "Mars/Olympus"}, headers=bearer(admin))
    assert (bad_tz.status_code, bad_tz.json()["error"]["code"]) == (422, "invalid_timezone")

    added = api.put(
        "/api/v1/teams/support/members/ana@example.com", json={"role": "supervisor"}, headers=bearer(admin)
    )
    assert added.status_code == 200
    assert [(m["email"], m["role"]) for m in added.json()["members"]] == [("ana@example.com", "supervisor")]
    me = api.get("/api/v1/me", headers=bearer(body["token"])).json()
    assert [(t["slug"], t["role"]) for t in me["teams"]] == [("support", "supervisor")]

    listed = api.get("/api/v1/teams", headers=bearer(body["token"])).json()
    assert [(t["slug"], t["member_count"]) for t in listed["teams"]] == [("support", 1)]
    assert listed["next_cursor"] is None

    removed = api.delete(f"/api/v1/teams/support/members/{ana_id}", headers=bearer(admin))
    assert removed.json()["members"] == []
    gone = api.delete(f"/api/v1/teams/support/members/{ana_id}", headers=bearer(admin))
    assert gone.status_code == 404

    promoted = api.patch(
        f"/api/v1/users/{ana_id}", json={"role": "supervisor", "capacity": 8}, headers=bearer(admin)
    )
    assert (promoted.json()["role"], promoted.json()["capacity"]) == ("supervisor", 8)


def test_validation_errors_use_the_envelope(api: TestClient, people: People) -> None:
    _, admin = people.user("admin")
    response = api.post("/api/v1/users", json={"name": "", "email": "not-an-email"}, headers=bearer(admin))
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert "name" in error["message"]
    assert {tuple(d["loc"]) for d in error["details"]} == {("body", "name"), ("body", "email")}
    unknown = api.post(
        "/api/v1/users", json={"name": "A", "email": "a@b.co", "colour": "red"}, headers=bearer(admin)
    )
    assert unknown.status_code == 422
    malformed = api.post(
        "/api/v1/users", content=b"{not json", headers={**bearer(admin), "Content-Type": "application/json"}
    )
    assert malformed.status_code == 422
    assert malformed.json()["error"]["code"] == "validation_error"


def test_unknown_routes_and_methods_use_the_envelope(api: TestClient) -> None:
    missing = api.get("/api/v1/nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong = api.put("/healthz")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "method_not_allowed"


def test_the_last_admin_cannot_be_demoted_or_deactivated(api: TestClient, people: People) -> None:
    admin, token = people.user("admin")
    response = api.patch(f"/api/v1/users/{admin.id}", json={"role": "agent"}, headers=bearer(token))
    assert response.status_code == 409
    other, other_token = people.user("admin")
    assert (
        api.patch(
            f"/api/v1/users/{admin.id}", json={"is_active": False}, headers=bearer(other_token)
        ).status_code
        == 200
    )
    response = api.patch(f"/api/v1/users/{other.id}", json={"role": "agent"}, headers=bearer(other_token))
    assert response.json()["error"]["code"] == "self_lockout"


def test_users_paginate_with_cursors(api: TestClient, people: People) -> None:
    _, admin = people.user("admin")
    for _ in range(6):
        people.user("agent")
    seen, cursor, pages = [], None, 0
    while True:
        page = api.get(
            "/api/v1/users",
            params={"limit": 3, **({"cursor": cursor} if cursor else {})},
            headers=bearer(admin),
        ).json()
        seen += [u["id"] for u in page["users"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 7
    bad = api.get("/api/v1/users", params={"cursor": "%%%"}, headers=bearer(admin))
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "invalid_cursor")
    too_big = api.get("/api/v1/users", params={"limit": 501}, headers=bearer(admin))
    assert too_big.status_code == 422


def test_conversation_and_message_wire_shapes(api: TestClient, db: Database, people: People) -> None:
    _, admin = people.user("admin")
    team = people.team("sales")
    conv = factories.conversation(db, team=team, subject="Pedido")
    factories.message(db, conv, "hola", channel_message_id="wamid.1", type="text")
    body = api.get(f"/api/v1/conversations/{conv.id}", headers=bearer(admin)).json()
    for key in (
        "id",
        "number",
        "customer",
        "team",
        "channel",
        "status",
        "priority",
        "assignee",
        "subject",
        "first_message_at",
        "first_response_at",
        "last_customer_message_at",
        "frt_due_at",
        "resolution_due_at",
        "window_open",
    ):
        assert key in body
    assert body["customer"]["name"] == "Juan López"
    assert body["team"]["slug"] == "sales"
    assert body["channel"] == "whatsapp"
    assert body["window_open"] is True
    assert body["last_customer_message_at"].endswith("Z")
    messages = api.get(f"/api/v1/conversations/{conv.id}/messages", headers=bearer(admin)).json()
    message = messages["messages"][0]
    assert {
        "id",
        "conversation_id",
        "direction",
        "sender_type",
        "type",
        "content_text",
        "delivery_status",
        "error",
        "flags",
        "media",
        "created_at",
    } <= set(message)
    assert (message["content_text"], message["direction"], message["flags"], message["media"]) == (
        "hola",
        "inbound",
        [],
        [],
    )
    assert messages["next_cursor"] is None
