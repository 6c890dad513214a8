"""DESIGN §5: team members see their teams' conversations; others get 404, not 403."""

from fastapi.testclient import TestClient

from max_server.db import Database
from tests.conftest import People, bearer
from tests.support import factories


def test_agents_see_only_their_teams_and_their_own(api: TestClient, db: Database, people: People) -> None:
    team_a, team_b = people.team("a"), people.team("b")
    agent_a, token_a = people.user("agent")
    agent_b, token_b = people.user("agent")
    supervisor_a, token_sup = people.user("agent")  # a team supervisor needs no global role
    _, token_admin = people.user("admin")
    people.join(team_a, agent_a)
    people.join(team_b, agent_b)
    people.join(team_a, supervisor_a, "supervisor")
    conv_a = factories.conversation(db, team=team_a)
    conv_b = factories.conversation(db, team=team_b, customer_row=factories.customer(db, "Otra"))
    mine_elsewhere = factories.conversation(
        db, team=team_b, assignee=agent_a, customer_row=factories.customer(db, "Tercera")
    )
    factories.message(db, conv_b, "secreto")

    denied = api.get(f"/api/v1/conversations/{conv_b.id}", headers=bearer(token_a))
    assert denied.status_code == 404
    assert denied.json()["error"]["code"] == "conversation_not_found"
    # A conversation that does not exist looks the same: ids do not leak.
    missing = api.get("/api/v1/conversations/999999", headers=bearer(token_a))
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "conversation_not_found")
    assert api.get(f"/api/v1/conversations/{conv_b.id}/messages", headers=bearer(token_a)).status_code == 404

    assert api.get(f"/api/v1/conversations/{conv_a.id}", headers=bearer(token_a)).status_code == 200
    assert api.get(f"/api/v1/conversations/{mine_elsewhere.id}", headers=bearer(token_a)).status_code == 200
    assert api.get(f"/api/v1/conversations/{conv_a.id}", headers=bearer(token_sup)).status_code == 200
    assert api.get(f"/api/v1/conversations/{conv_b.id}", headers=bearer(token_sup)).status_code == 404
    assert api.get(f"/api/v1/conversations/{conv_b.id}", headers=bearer(token_admin)).status_code == 200
    assert api.get(f"/api/v1/conversations/{conv_b.id}", headers=bearer(token_b)).status_code == 200

    listed = api.get("/api/v1/conversations", headers=bearer(token_a)).json()["conversations"]
    assert {c["id"] for c in listed} == {str(conv_a.id), str(mine_elsewhere.id)}
    everything = api.get("/api/v1/conversations?status=all", headers=bearer(token_admin)).json()[
        "conversations"
    ]
    assert len(everything) == 3


def test_a_user_in_no_team_sees_only_their_assignments(api: TestClient, db: Database, people: People) -> None:
    loner, token = people.user("agent")
    factories.conversation(db)
    assert api.get("/api/v1/conversations", headers=bearer(token)).json()["conversations"] == []
    mine = factories.conversation(db, assignee=loner, customer_row=factories.customer(db, "B"))
    listed = api.get("/api/v1/conversations", headers=bearer(token)).json()["conversations"]
    assert [c["id"] for c in listed] == [str(mine.id)]
