"""The role and visibility matrix over every route the app has:

* the app's routes and their guards match the hand-written table of ``roles.MIN_ROLE`` exactly
  (no route missing from it, no stale row, no guard lower or higher than written down);
* every guarded route, for every role: below the table's minimum role → 403
  ``insufficient_role``; at or above it → never 401 and never ``insufficient_role``;
* every route that names a conversation, a customer, a media file, a link, a notification or a
  token (in its path or its body) answers a user who may not see that object exactly as it
  answers for an object that does not exist: 404 with the same code, never 403;
* lists, searches and the event feed leave out what the user may not see.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from max_server.api.public import PUBLIC_ROUTES
from max_server.db import Database
from max_server.models import CustomerIdentity, IdentityLink, MediaFile, Notification
from max_server.services import events
from tests.conftest import People, bearer
from tests.reliability.roles import MIN_ROLE, WEBSOCKETS
from tests.support import factories
from tests.support.routes import RouteInfo, api_routes

ROLES = ["agent", "supervisor", "admin"]
MISSING = 987_654_321
# Objects a route may name; each is checked for visibility (404 for what one may not see).
OBJECT_PARAMS = ("conversation_id", "customer_id", "media_id", "link_id", "notification_id", "token_id")
# A valid body for every such route that takes one, so the answer is about the object, not the body.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("PATCH", "/api/v1/conversations/{conversation_id}"): {"priority": "high"},
    ("POST", "/api/v1/conversations/{conversation_id}/messages"): {"text": "hola"},
    ("POST", "/api/v1/conversations/{conversation_id}/assign"): {"user_id": "me"},
    ("POST", "/api/v1/conversations/{conversation_id}/transfer"): {"team": "a"},
    ("POST", "/api/v1/conversations/{conversation_id}/close"): {"reason": "resolved"},
    ("POST", "/api/v1/customers/{customer_id}/link"): {"secondary_customer_id": "{visible_customer}"},
    ("PUT", "/api/v1/customers/{customer_id}/transactions/{external_id}"): {
        "amount": "5.00",
        "currency": "USD",
        "status": "paid",
        "occurred_at": "2026-03-01T10:00:00Z",
    },
    ("PUT", "/api/v1/customers/{customer_id}/tickets/{external_id}"): {"subject": "x", "status": "open"},
    ("POST", "/api/v1/customers/{customer_id}/tags"): {"tags": ["vip"]},
}
QUERIES: dict[tuple[str, str], dict[str, str]] = {
    ("DELETE", "/api/v1/customers/{customer_id}/tags"): {"tag": "vip"},
}
# Routes that name a conversation in their body instead of their path.
BODY_REFERENCES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/v1/canned-responses/{response_id}/send"): {"conversation_id": "{conversation_id}"},
    ("POST", "/api/v1/canned-responses/{response_id}/render"): {"conversation_id": "{conversation_id}"},
}


@dataclass
class World:
    tokens: dict[str, str]  # role -> token (agent and supervisor are in team "a")
    hidden: dict[str, int]  # object param -> an object of team "b" (or of someone else)
    visible: dict[str, int]
    defaults: dict[str, str]  # other path params


@pytest.fixture
def world(db: Database, people: People, api: TestClient) -> World:
    team_a, team_b = people.team("a"), people.team("b")
    agent, agent_token = people.user("agent", "Ana")
    supervisor, supervisor_token = people.user("supervisor", "Sara")
    _, admin_token = people.user("admin", "Admin")
    other, _ = people.user("agent", "Otro")
    bystander, _ = people.user("agent", "Nadie")  # what the role sweep may change or deactivate
    people.join(team_a, agent)
    people.join(team_a, supervisor, "supervisor")
    people.join(team_b, other)
    account = factories.channel_account(db)
    mine = factories.customer(db, "Cliente A")
    theirs = factories.customer(db, "Cliente Secreto B")
    spare = factories.customer(db, "Cliente B dos")
    conv_a = factories.conversation(db, team=team_a, customer_row=mine, account=account)
    conv_b = factories.conversation(db, team=team_b, customer_row=theirs, account=account)
    factories.conversation(db, team=team_b, customer_row=spare, account=account)
    message_b = factories.message(db, conv_b, "secreto")
    assert theirs.id and spare.id and mine.id and conv_a.id and conv_b.id and message_b.id
    with db.session() as session:
        session.add(CustomerIdentity(customer_id=theirs.id, channel="whatsapp", external_id="5215500000002"))
        media = MediaFile(
            message_id=message_b.id, conversation_id=conv_b.id, media_type="image", status="pending"
        )
        link = IdentityLink(primary_customer_id=theirs.id, secondary_customer_id=spare.id)
        notice = Notification(user_id=other.id, kind="test", text="para otro", data={})
        session.add_all([media, link, notice])
        events.emit(session, "test.hidden", {"secret": "b"}, to=events.audience(teams=[team_b.id]))
        session.commit()
        ids = {"media_id": media.id, "link_id": link.id, "notification_id": notice.id}
    others_token = api.post(f"/api/v1/users/{other.id}/tokens", json={}, headers=bearer(admin_token)).json()
    canned = api.post(
        "/api/v1/canned-responses",
        json={"shortcut": "/hola", "title": "Hola", "content": "Hola {{nombre|amigo}}"},
        headers=bearer(admin_token),
    ).json()
    return World(
        tokens={"agent": agent_token, "supervisor": supervisor_token, "admin": admin_token},
        hidden={
            "conversation_id": conv_b.id,
            "customer_id": theirs.id,
            "token_id": int(others_token["api_token"]["id"]),
            **{k: int(v or 0) for k, v in ids.items()},
        },
        visible={"conversation_id": conv_a.id, "customer_id": mine.id},
        defaults={
            "response_id": str(canned["id"]),
            "team": "a",
            "user": str(bystander.id),
            "token_id": str(MISSING),
            "media_id": str(MISSING),
            "link_id": str(MISSING),
            "notification_id": str(MISSING),
            "channel": str(account.id),
            "external_id": "T-1",
            "day": "2026-12-25",
            "priority": "normal",
            "skill": "es",
            "subscription_id": "1",
            "delivery_id": "1",
            "job_id": "1",
            "template_id": "1",
            "rule_id": "1",
            "key": "media/1/1/x.jpg",
        },
    )


def _fill(route: RouteInfo, world: World, objects: dict[str, int]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1).split(":")[0]
        if name in objects:
            return str(objects[name])
        return world.defaults.get(name, "1")

    return re.sub(r"\{([^}]+)\}", value, route.path)


def _body(route: RouteInfo, world: World, objects: dict[str, int]) -> dict[str, Any] | None:
    template = BODIES.get((route.method, route.path)) or BODY_REFERENCES.get((route.method, route.path))
    if template is None:
        return None
    names = {**{k: str(v) for k, v in objects.items()}, "visible_customer": str(world.visible["customer_id"])}
    return {k: (v.format(**names) if isinstance(v, str) else v) for k, v in template.items()}


def _call(api: TestClient, route: RouteInfo, world: World, role: str, objects: dict[str, int]) -> Any:
    return api.request(
        route.method,
        _fill(route, world, objects),
        json=_body(route, world, objects),
        params=QUERIES.get((route.method, route.path)),
        headers=bearer(world.tokens[role]),
    )


def _guarded(app: FastAPI) -> list[RouteInfo]:
    return [r for r in api_routes(app) if not r.is_websocket and (r.method, r.path) not in PUBLIC_ROUTES]


def test_the_guards_match_the_table_of_minimum_roles(app: FastAPI) -> None:
    routes = [r for r in api_routes(app) if not r.is_websocket]
    found = {
        (r.method, r.path): "public" if (r.method, r.path) in PUBLIC_ROUTES else str(r.min_role)
        for r in routes
    }
    assert len(found) == len(routes), "a method and path registered twice"
    missing = sorted(set(found) - set(MIN_ROLE))
    stale = sorted(set(MIN_ROLE) - set(found))
    assert not missing, f"routes with no row in tests/reliability/roles.py: {missing}"
    assert not stale, f"rows in tests/reliability/roles.py for routes that are gone: {stale}"
    wrong = {
        route: (found[route], expected) for route, expected in MIN_ROLE.items() if found[route] != expected
    }
    assert not wrong, f"guards that differ from the table (found, expected): {wrong}"
    assert {r.path for r in api_routes(app) if r.is_websocket} == WEBSOCKETS


def test_every_route_for_every_role(app: FastAPI, api: TestClient, world: World) -> None:
    checked = 0
    for route in _guarded(app):
        expected = MIN_ROLE[(route.method, route.path)]  # the table, not the code's own guard
        for role in ROLES:
            response = _call(api, route, world, role, world.visible)
            code = response.json().get("error", {}).get("code") if response.status_code >= 400 else None
            if ROLES.index(role) < ROLES.index(expected):
                assert (response.status_code, code) == (403, "insufficient_role"), (
                    route,
                    role,
                    response.text,
                )
            else:
                assert response.status_code != 401 and code != "insufficient_role", (
                    route,
                    role,
                    response.text,
                )
                assert response.status_code < 500, (route, role, response.text)
            checked += 1
    assert checked > 200


def _object_routes(app: FastAPI) -> list[tuple[RouteInfo, str]]:
    found = []
    for route in _guarded(app):
        named = [p for p in OBJECT_PARAMS if "{" + p + "}" in route.path]
        if (route.method, route.path) in BODY_REFERENCES:
            named.append("conversation_id")
        found += [(route, name) for name in named]
    return found


def test_every_route_naming_an_object_has_a_valid_request(app: FastAPI) -> None:
    """A new route on these objects must say which body and query make it reach its
    visibility check (otherwise a 422 would hide what it does with a hidden object)."""
    spec = app.openapi()["paths"]
    for route, _ in _object_routes(app):
        operation = spec[route.path][route.method.lower()]
        if "requestBody" in operation:
            assert (route.method, route.path) in BODIES | BODY_REFERENCES, f"no body for {route}"
        required = {
            p["name"] for p in operation.get("parameters", []) if p["in"] == "query" and p.get("required")
        }
        assert required <= set(QUERIES.get((route.method, route.path), {})), f"no query for {route}"


@pytest.mark.parametrize("role", ["agent", "supervisor"])
def test_what_one_may_not_see_looks_like_what_does_not_exist(
    app: FastAPI, api: TestClient, world: World, role: str
) -> None:
    checked = []
    for route, name in _object_routes(app):
        if ROLES.index(role) < ROLES.index(MIN_ROLE[(route.method, route.path)]):
            continue  # refused by role first (checked above)
        hidden = _call(api, route, world, role, {**world.visible, name: world.hidden[name]})
        missing = _call(api, route, world, role, {**world.visible, name: MISSING})
        assert hidden.status_code == 404, (route.method, route.path, role, hidden.status_code, hidden.text)
        assert hidden.json()["error"]["code"] == missing.json()["error"]["code"], (route, role)
        checked.append((route.method, route.path))
    assert len(checked) >= 20


def test_admins_see_everything(app: FastAPI, api: TestClient, world: World) -> None:
    for route, name in _object_routes(app):
        if route.method != "GET":
            continue
        response = _call(api, route, world, "admin", {**world.visible, name: world.hidden[name]})
        assert response.status_code in (200, 409), (route, response.text)  # 409: media still pending


def test_lists_and_searches_leave_out_the_other_team(api: TestClient, world: World) -> None:
    agent = bearer(world.tokens["agent"])
    conversations = api.get("/api/v1/conversations?status=all", headers=agent).json()["conversations"]
    assert {c["id"] for c in conversations} == {str(world.visible["conversation_id"])}
    customers = api.get("/api/v1/customers", headers=agent).json()["customers"]
    assert {c["id"] for c in customers} == {str(world.visible["customer_id"])}
    assert api.get("/api/v1/customers", params={"q": "Secreto"}, headers=agent).json()["customers"] == []
    assert (
        api.get("/api/v1/customers", params={"q": "5215500000002"}, headers=agent).json()["customers"] == []
    )
    by_identity = api.get(
        "/api/v1/customers/by-identity",
        params={"channel": "whatsapp", "external_id": "5215500000002"},
        headers=agent,
    )
    assert by_identity.status_code == 404
    feed = api.get("/api/v1/events", params={"after": 0}, headers=agent).json()["events"]
    assert all(e["type"] != "test.hidden" for e in feed)
    assert api.get("/api/v1/customers/links", headers=agent).json()["links"] == []
    assert api.get("/api/v1/notifications", headers=agent).json()["notifications"] == []
    admin_feed = api.get("/api/v1/events", params={"after": 0}, headers=bearer(world.tokens["admin"])).json()
    assert any(e["type"] == "test.hidden" for e in admin_feed["events"])
