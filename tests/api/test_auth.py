"""Every route needs a token and the right role, except the explicit public allow-list.

The routes are enumerated from the app itself, so a new route cannot escape these tests.
"""

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from max_server.api.public import PUBLIC_ROUTES, WEBSOCKET_ROUTES
from tests.conftest import People, bearer
from tests.support.routes import api_routes

ROLE_BELOW = {"supervisor": "agent", "admin": "supervisor"}


def test_every_route_is_public_or_guarded(app: FastAPI) -> None:
    routes = api_routes(app)
    assert routes, "no routes found"
    unguarded = [
        (r.method, r.path)
        for r in routes
        if r.min_role is None
        and (r.method, r.path) not in PUBLIC_ROUTES
        and not (r.is_websocket and r.path in WEBSOCKET_ROUTES)
    ]
    assert unguarded == [], f"routes without a role guard and not on the public allow-list: {unguarded}"
    # Everything on the allow-list exists (no stale entries) and carries no guard.
    present = {(r.method, r.path): r for r in routes}
    for key in PUBLIC_ROUTES:
        assert key in present, f"allow-listed route {key} does not exist"
        assert present[key].min_role is None


def test_guarded_routes_answer_401_without_a_token(app: FastAPI, api: TestClient) -> None:
    for route in api_routes(app):
        if route.min_role is None or route.is_websocket:
            continue
        response = api.request(route.method, route.concrete_path(), json={})
        assert response.status_code == 401, (route, response.status_code, response.text)
        body = response.json()
        assert body["error"]["code"] in ("missing_token", "invalid_token")
        assert set(body["error"]) == {"code", "message", "details"}


def test_guarded_routes_answer_401_to_a_wrong_token(app: FastAPI, api: TestClient) -> None:
    for route in api_routes(app):
        if route.min_role is None or route.is_websocket:
            continue
        response = api.request(
            route.method, route.concrete_path(), json={}, headers=bearer("max_" + "x" * 43)
        )
        assert response.status_code == 401, route
        assert response.json()["error"]["code"] == "invalid_token"


def test_routes_answer_403_to_a_role_below_their_minimum(
    app: FastAPI, api: TestClient, people: People
) -> None:
    tokens = {role: people.user(role)[1] for role in ("agent", "supervisor")}
    checked = 0
    for route in api_routes(app):
        if route.min_role not in ROLE_BELOW or route.is_websocket:
            continue
        for role in ("agent", "supervisor"):
            if ["agent", "supervisor", "admin"].index(role) >= ["agent", "supervisor", "admin"].index(
                route.min_role
            ):
                continue
            response = api.request(route.method, route.concrete_path(), json={}, headers=bearer(tokens[role]))
            assert response.status_code == 403, (route, role, response.text)
            assert response.json()["error"]["code"] == "insufficient_role"
            checked += 1
    assert checked > 0


def test_public_routes_each_have_their_own_check(api: TestClient) -> None:
    assert api.get("/healthz").json()["status"] == "ok"
    ready = api.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "migrations": "current"}


@pytest.mark.parametrize("header", ["Basic YWxhZGRpbjpvcGVuc2VzYW1l", "Bearer", "max_abc", "Bearer   "])
def test_malformed_authorization_headers(api: TestClient, header: str) -> None:
    response = api.get("/api/v1/me", headers={"Authorization": header})
    assert response.status_code == 401


def test_revoked_tokens_and_deactivated_users_are_refused(api: TestClient, people: People) -> None:
    _, admin_token = people.user("admin")
    agent, agent_token = people.user("agent")
    assert api.get("/api/v1/me", headers=bearer(agent_token)).status_code == 200
    extra = api.post(
        f"/api/v1/users/{agent.id}/tokens", json={"name": "laptop"}, headers=bearer(agent_token)
    ).json()
    assert api.get("/api/v1/me", headers=bearer(extra["token"])).status_code == 200
    revoked = api.delete(f"/api/v1/tokens/{extra['api_token']['id']}", headers=bearer(agent_token))
    assert revoked.json()["revoked_at"] is not None
    assert api.get("/api/v1/me", headers=bearer(extra["token"])).status_code == 401
    assert api.get("/api/v1/me", headers=bearer(agent_token)).status_code == 200
    api.patch(f"/api/v1/users/{agent.id}", json={"is_active": False}, headers=bearer(admin_token))
    assert api.get("/api/v1/me", headers=bearer(agent_token)).status_code == 401


def test_agents_cannot_touch_other_peoples_tokens(api: TestClient, people: People) -> None:
    _, agent_token = people.user("agent")
    other, other_token = people.user("agent")
    theirs = api.get(f"/api/v1/users/{other.id}/tokens", headers=bearer(other_token)).json()["tokens"][0]
    assert api.get(f"/api/v1/users/{other.id}/tokens", headers=bearer(agent_token)).status_code == 404
    assert api.delete(f"/api/v1/tokens/{theirs['id']}", headers=bearer(agent_token)).status_code == 404
    assert (
        api.post(f"/api/v1/users/{other.id}/tokens", json={}, headers=bearer(agent_token)).status_code == 403
    )


def test_tokens_are_stored_only_as_hashes(api: TestClient, people: People, db: object) -> None:
    from sqlmodel import select

    from max_server.models import ApiToken

    _, token = people.user("agent")
    with db.session() as session:  # type: ignore[attr-defined]
        stored = [t.token_hash for t in session.exec(select(ApiToken))]
    assert token not in stored
    assert all(len(h) == 64 for h in stored)


def test_websocket_routes_refuse_the_handshake_without_a_valid_token(app: FastAPI, api: TestClient) -> None:
    from starlette.testclient import WebSocketDenialResponse

    sockets = [r for r in api_routes(app) if r.is_websocket]
    assert {r.path for r in sockets} == set(WEBSOCKET_ROUTES)
    for route in sockets:
        for headers, query in (({}, ""), (bearer("max_" + "x" * 43), ""), ({}, "?token=max_" + "y" * 43)):
            with (
                pytest.raises(WebSocketDenialResponse) as denied,
                api.websocket_connect(route.path + query, headers=headers),
            ):
                pass
            assert denied.value.status_code == 401
            assert denied.value.json()["error"]["code"] in ("missing_token", "invalid_token")
