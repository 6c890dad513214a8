"""Regression tests for the server bugs the reliability suite found (docs/reliability.md lists
them): odd numbers in ids, and the live stream during a database outage."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from max_server.api import events as events_api
from max_server.app import create_app
from max_server.db import Database
from max_server.services import events
from tests.conftest import People, bearer, make_settings
from tests.support import factories
from tests.support.live import LiveServer
from tests.support.tcpproxy import TcpProxy

HUGE = "9" * 30  # beyond 64 bits


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/conversations/{HUGE}",
        f"/api/v1/canned-responses/{HUGE}",
        f"/api/v1/users/{HUGE}",
        f"/api/v1/events?after={HUGE}",
        f"/api/v1/media/{HUGE}",
    ],
)
def test_ids_beyond_64_bits_are_refused_not_crashed_on(api: TestClient, people: People, path: str) -> None:
    """SQLite's driver raised OverflowError and PostgreSQL "bigint out of range": both were 500."""
    _, admin = people.user("admin")
    answer = api.get(path, headers=bearer(admin))
    assert (answer.status_code, answer.json()["error"]["code"]) == (422, "invalid_value")


def test_unicode_digits_that_int_refuses_are_not_ids(api: TestClient, people: People, db: Database) -> None:
    """``"¹".isdigit()`` is True but ``int("¹")`` raises: team, user and channel references,
    assignees and body ids were 500s."""
    _, admin = people.user("admin")
    people.team("ventas")
    conversation = factories.conversation(db)
    headers = bearer(admin)
    assert api.get("/api/v1/teams/¹¹", headers=headers).status_code == 404
    assert api.get("/api/v1/hours/¹¹", headers=headers).status_code == 404
    assert api.get("/api/v1/users/¹", headers=headers).status_code == 404
    assert api.get("/api/v1/channels/²", headers=headers).status_code == 404
    odd_assignee = api.get("/api/v1/conversations", params={"assignee": "³"}, headers=headers)
    assert (odd_assignee.status_code, odd_assignee.json()["error"]["code"]) == (422, "invalid_assignee")
    canned = api.post(
        "/api/v1/canned-responses",
        json={"shortcut": "/hola", "title": "Hola", "content": "Hola"},
        headers=headers,
    ).json()
    for body in ({"conversation_id": "¹"}, {"conversation_id": "abc"}):
        for verb in ("send", "render"):
            answer = api.post(f"/api/v1/canned-responses/{canned['id']}/{verb}", json=body, headers=headers)
            assert answer.status_code == 422, (verb, body, answer.text)
    for user_id in ("abc", "¹", "1.5"):
        answer = api.post(
            f"/api/v1/conversations/{conversation.id}/assign", json={"user_id": user_id}, headers=headers
        )
        assert (answer.status_code, answer.json()["error"]["code"]) == (422, "invalid_user_id")


def test_template_variables_cannot_crash_or_stall_the_server(api: TestClient, people: People) -> None:
    """``{{¹}}`` was a 500; ``{{1}} {{1000000000000}}`` built a set of a trillion numbers."""
    _, admin = people.user("admin")
    for text in ("Hola {{¹}}", "Hola {{1}} y {{1000000000000}}"):
        started = time.monotonic()
        answer = api.post(
            "/api/v1/whatsapp-templates",
            json={
                "name": "promo",
                "language": "es",
                "category": "MARKETING",
                "components": [{"type": "BODY", "text": text}],
            },
            headers=bearer(admin),
        )
        assert answer.status_code == 422, answer.text
        assert time.monotonic() - started < 5


# The live stream while the database is away ------------------------------------------------------
@pytest.fixture
def proxy(postgres_db: Database) -> Iterator[TcpProxy]:
    from sqlalchemy.engine import make_url

    url = make_url(postgres_db.url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as running:
        yield running


@pytest.fixture
def cut_off_live(
    postgres_db: Database, proxy: TcpProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LiveServer]:
    """A live server whose every database connection goes through ``proxy``."""
    monkeypatch.setattr(events_api, "RECHECK_SECONDS", 0.5)
    monkeypatch.setattr(events_api, "RETRY_SECONDS", 0.5)
    through = Database(proxy.rewrite(postgres_db.url))
    settings = make_settings(through, tmp_path)
    with LiveServer(create_app(settings, db=through, background=False)) as server:
        yield server
    through.dispose()


def test_the_live_stream_outlives_a_database_outage(
    cut_off_live: LiveServer, proxy: TcpProxy, postgres_db: Database
) -> None:
    """The token recheck used to crash the stream (close 1011, a traceback in the log) and a new
    connection got 500; now the stream stays, a newcomer gets 503, and events flow again."""
    _, token = People(postgres_db).user("admin")
    url = cut_off_live.url.replace("http://", "ws://") + "/api/v1/events"
    with connect(url, additional_headers=bearer(token), open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["control"] == "ready"
        proxy.cut()
        time.sleep(2)  # several rechecks fail meanwhile
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.5)  # still open: nothing to say, nothing closed
        with pytest.raises(InvalidStatus) as refused:
            connect(url, additional_headers=bearer(token), open_timeout=10)
        assert refused.value.response.status_code == 503
        assert json.loads(refused.value.response.body or b"{}")["error"]["code"] == "database_unavailable"
        proxy.restore()
        with postgres_db.session() as session:
            events.emit(session, "test.after_outage", {"n": 1}, to=events.audience(everyone=True))
            session.commit()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            frame = json.loads(ws.recv(timeout=deadline - time.monotonic()))
            if frame.get("type") == "test.after_outage":
                break
        else:
            pytest.fail("no event after the outage")
