"""Every route needs a token and the right role, except the explicit public allow-list.

The routes are enumerated from the app itself, so a new route cannot escape these tests.
"""

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from max_server import __version__
from max_server.api.public import PUBLIC_ROUTES, WEBSOCKET_ROUTES
from max_server.app import create_app
from max_server.channels import chat_app
from max_server.db import Database
from max_server.settings import Settings
from max_server.storage import get_storage
from max_server.storage.local import LocalStorage
from tests.conftest import People, bearer, make_settings
from tests.support.migrations import database_at, one_behind_head
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


APP_SECRET = "public-route-app-secret"
VERIFY_TOKEN = "public-route-verify-token"
CHAT_SECRET = "public-route-chat-secret"
METRICS_TOKEN = "public-route-metrics-token"


@dataclass
class Public:
    """A server with every public route's secret configured, and what its checks need."""

    client: TestClient
    settings: Settings
    backend: str
    tmp_path: Path


@pytest.fixture
def public(db: Database, backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Public]:
    monkeypatch.delenv("MAX_CONFIG", raising=False)
    settings = make_settings(
        db,
        tmp_path,
        server={"metrics_token": METRICS_TOKEN, "public_url": "http://testserver"},
        whatsapp={"app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN},
        chat_app={"secret": CHAT_SECRET},
    )
    with TestClient(create_app(settings, db=db, background=False)) as client:
        yield Public(client, settings, backend, tmp_path)


def _meta_signature(raw: bytes, secret: str) -> dict[str, str]:
    digest = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}


def check_healthz(p: Public) -> None:
    """Liveness reveals nothing: a status and the version, to anyone."""
    body = p.client.get("/healthz").json()
    assert {k: v for k, v in body.items() if v} == {"status": "ok", "version": __version__}


def check_readyz(p: Public) -> None:
    """Ready only with a current schema: one migration behind answers 503."""
    ready = p.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "migrations": "current"}
    with database_at(p.backend, p.tmp_path, one_behind_head()) as behind:
        # No lifespan: nothing but /readyz itself may touch the outdated schema.
        stale = TestClient(create_app(p.settings, db=behind, background=False)).get("/readyz")
    assert stale.status_code == 503
    assert stale.json()["error"]["code"] == "migrations_pending"
    assert "max db upgrade" in stale.json()["error"]["message"]


def check_metrics(p: Public) -> None:
    assert p.client.get("/metrics").status_code == 401
    wrong = p.client.get("/metrics", headers=bearer("not-" + METRICS_TOKEN))
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (401, "invalid_token")
    right = p.client.get("/metrics", headers=bearer(METRICS_TOKEN))
    assert right.status_code == 200 and "max_" in right.text


def check_whatsapp_handshake(p: Public) -> None:
    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444"}
    wrong = p.client.get("/webhooks/whatsapp", params={**query, "hub.verify_token": "guess"})
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (403, "verify_token_mismatch")
    assert p.client.get("/webhooks/whatsapp", params=query).status_code == 403
    right = p.client.get("/webhooks/whatsapp", params={**query, "hub.verify_token": VERIFY_TOKEN})
    assert (right.status_code, right.text) == (200, "1158201444")


def _check_meta_signature(p: Public, path: str) -> None:
    raw = json.dumps({"object": "whatsapp_business_account", "entry": []}).encode()
    unsigned = p.client.post(path, content=raw, headers={"Content-Type": "application/json"})
    assert (unsigned.status_code, unsigned.json()["error"]["code"]) == (401, "invalid_signature")
    forged = p.client.post(path, content=raw, headers=_meta_signature(raw, "not-the-app-secret"))
    assert (forged.status_code, forged.json()["error"]["code"]) == (401, "invalid_signature")
    altered = p.client.post(path, content=raw + b" ", headers=_meta_signature(raw, APP_SECRET))
    assert altered.status_code == 401
    signed = p.client.post(path, content=raw, headers=_meta_signature(raw, APP_SECRET))
    assert signed.status_code == 200, signed.text


def check_whatsapp_webhook(p: Public) -> None:
    _check_meta_signature(p, "/webhooks/whatsapp")


def check_whatsapp_template_status(p: Public) -> None:
    _check_meta_signature(p, "/webhooks/whatsapp/template-status")


def check_chat_app(p: Public) -> None:
    raw = b"{}"
    forged = p.client.post(
        "/channels/chat-app/messages", content=raw, headers=chat_app.signed_headers("whsec_bm90LWl0", raw)
    )
    assert (forged.status_code, forged.json()["error"]["code"]) == (401, "invalid_signature")
    unsigned = p.client.post("/channels/chat-app/messages", content=raw)
    assert unsigned.status_code == 401
    # Correctly signed, the same body gets past the signature (and is then judged on its content).
    signed = p.client.post(
        "/channels/chat-app/messages", content=raw, headers=chat_app.signed_headers(CHAT_SECRET, raw)
    )
    assert signed.status_code == 422, signed.text


def check_media_link(p: Public) -> None:
    storage = get_storage(p.settings)
    assert isinstance(storage, LocalStorage)
    source = p.tmp_path / "note.txt"
    source.write_text("hola")
    key = "media/1/2/note.txt"
    storage.put_file(key, source, "text/plain")
    link = storage.signed_url(key, 300, "note.txt", "text/plain").removeprefix("http://testserver")
    assert p.client.get(link).text == "hola"
    tampered = p.client.get(link.replace("sig=", "sig=x"))
    assert (tampered.status_code, tampered.json()["error"]["code"]) == (403, "invalid_link")
    other_name = p.client.get(link.replace("name=note.txt", "name=evil.html"))
    assert other_name.status_code == 403
    assert p.client.get(f"/media/{key}").status_code == 403
    past = int(time.time()) - 10
    expired = f"/media/{key}?exp={past}&name=note.txt&type=text%2Fplain&sig=" + storage.signature(
        key, past, "note.txt", "text/plain"
    )
    assert (p.client.get(expired).status_code, p.client.get(expired).json()["error"]["code"]) == (
        403,
        "link_expired",
    )


PUBLIC_CHECKS: dict[tuple[str, str], Callable[[Public], None]] = {
    ("GET", "/healthz"): check_healthz,
    ("GET", "/readyz"): check_readyz,
    ("GET", "/metrics"): check_metrics,
    ("GET", "/webhooks/whatsapp"): check_whatsapp_handshake,
    ("POST", "/webhooks/whatsapp"): check_whatsapp_webhook,
    ("POST", "/webhooks/whatsapp/template-status"): check_whatsapp_template_status,
    ("POST", "/channels/chat-app/messages"): check_chat_app,
    ("GET", "/media/{key:path}"): check_media_link,
}


def test_every_public_route_has_its_own_check() -> None:
    """A route added to the allow-list without a check here fails this test."""
    assert set(PUBLIC_CHECKS) == set(PUBLIC_ROUTES)


@pytest.mark.parametrize("route", sorted(PUBLIC_CHECKS), ids=lambda r: f"{r[0]} {r[1]}")
def test_public_route_refuses_what_its_check_refuses(public: Public, route: tuple[str, str]) -> None:
    PUBLIC_CHECKS[route](public)


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
