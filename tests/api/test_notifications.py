"""Notifications: written with their event, listed unread first, marked read."""

from fastapi.testclient import TestClient
from sqlmodel import select

from max_server.db import Database
from max_server.models import Event
from max_server.services import notifications
from tests.conftest import People, bearer


def test_notify_list_and_mark_read(api: TestClient, db: Database, people: People) -> None:
    user, token = people.user("agent")
    other, other_token = people.user("agent")
    with db.session() as session:
        for n in range(3):
            notifications.notify(
                session, [user.id], "conversation.escalated", f"#{n} escalated", {"number": n}
            )
        notifications.notify(session, [other.id], "customer.rate_limited", "blocked")
        session.commit()
        created = list(
            session.exec(select(Event).where(Event.type == "notification.created").order_by(Event.id))
        )
    assert [e.audience["users"] for e in created] == [[user.id]] * 3 + [[other.id]]
    assert created[0].data["kind"] == "conversation.escalated"

    listed = api.get("/api/v1/notifications", headers=bearer(token)).json()
    assert listed["unread_count"] == 3
    assert [n["text"] for n in listed["notifications"]] == ["#2 escalated", "#1 escalated", "#0 escalated"]
    oldest = listed["notifications"][2]["id"]
    read = api.post(f"/api/v1/notifications/{oldest}/read", headers=bearer(token)).json()
    assert read["read_at"] is not None
    # Unread first, then read; paginated with a cursor that keeps that order.
    first = api.get("/api/v1/notifications", params={"limit": 2}, headers=bearer(token)).json()
    assert [n["text"] for n in first["notifications"]] == ["#2 escalated", "#1 escalated"]
    rest = api.get(
        "/api/v1/notifications", params={"limit": 2, "cursor": first["next_cursor"]}, headers=bearer(token)
    ).json()
    assert [n["text"] for n in rest["notifications"]] == ["#0 escalated"]
    assert rest["next_cursor"] is None
    assert api.get("/api/v1/notifications?unread=true", headers=bearer(token)).json()["unread_count"] == 2
    # Someone else's notification is not found.
    assert api.post(f"/api/v1/notifications/{oldest}/read", headers=bearer(other_token)).status_code == 404
    assert api.post("/api/v1/notifications/read-all", headers=bearer(token)).json() == {"marked": 2}
    assert api.get("/api/v1/notifications", headers=bearer(token)).json()["unread_count"] == 0


def test_team_supervisors_else_admins(db: Database, people: People) -> None:
    team = people.team("support")
    agent, _ = people.user("agent")
    admin, _ = people.user("admin")
    people.join(team, agent)
    with db.session() as session:
        assert notifications.team_supervisors(session, team.id) == [admin.id]
        assert notifications.team_supervisors(session, None) == [admin.id]
    supervisor, _ = people.user("agent")
    people.join(team, supervisor, "supervisor")
    with db.session() as session:
        assert notifications.team_supervisors(session, team.id) == [supervisor.id]
