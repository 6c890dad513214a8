"""The websocket stream over real HTTP: replay, live push, visibility, resume, revocation."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from max_server.db import Database
from max_server.services import events
from tests.conftest import People, bearer
from tests.support.live import LiveServer


def open_stream(
    live: LiveServer, token: str, after: int | None = None, via_query: bool = False
) -> ClientConnection:
    url = live.url.replace("http://", "ws://") + "/api/v1/events"
    params = []
    if after is not None:
        params.append(f"after={after}")
    if via_query:
        params.append(f"token={token}")
    if params:
        url += "?" + "&".join(params)
    headers = {} if via_query else bearer(token)
    return connect(url, additional_headers=headers, open_timeout=10)


def frames_until_ready(ws: ClientConnection) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    got: list[dict[str, Any]] = []
    while True:
        frame = json.loads(ws.recv(timeout=10))
        if frame.get("control") == "ready":
            return got, frame
        got.append(frame)


def next_event(ws: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    while True:
        frame = json.loads(ws.recv(timeout=timeout))
        if "control" not in frame:
            return frame


def emit(db: Database, name: str, *, team: int | None = None, everyone: bool = False) -> None:
    with db.session() as session:
        events.emit(
            session, "test.event", {"name": name}, to=events.audience(teams=[team], everyone=everyone)
        )
        session.commit()


def test_events_are_pushed_live_and_replayed_after_a_drop(
    live: LiveServer, db: Database, people: People
) -> None:
    team_a, team_b = people.team("a"), people.team("b")
    agent, token = people.user("agent")
    people.join(team_a, agent)

    with open_stream(live, token, after=0) as ws:
        replayed, ready = frames_until_ready(ws)
        assert replayed == []
        emit(db, "first", team=team_a.id)
        emit(db, "hidden", team=team_b.id)
        emit(db, "second", team=team_a.id)
        got = [next_event(ws), next_event(ws)]
        assert [e["data"]["name"] for e in got] == ["first", "second"]
        assert set(got[0]) == {"id", "seq", "type", "created_at", "data"}
        assert got[0]["type"] == "test.event"
        with pytest.raises(TimeoutError):
            next_event(ws, timeout=0.5)  # "hidden" never arrives
        last = got[-1]["seq"]

    # While disconnected, more happens; resuming after the last seq delivers it all, in order.
    emit(db, "while-away-1", team=team_a.id)
    emit(db, "while-away-hidden", team=team_b.id)
    emit(db, "while-away-2", everyone=True)
    with open_stream(live, token, after=last) as ws:
        replayed, ready = frames_until_ready(ws)
        # What was sequenced before the reconnect is replayed; anything the sequencer had not
        # numbered yet arrives live right after: together, every event once, in order.
        got = replayed + [next_event(ws) for _ in range(2 - len(replayed))]
        assert [e["data"]["name"] for e in got] == ["while-away-1", "while-away-2"]
        assert [e["seq"] for e in got] == sorted(e["seq"] for e in got)
        assert not replayed or ready["latest_seq"] >= replayed[-1]["seq"]
        emit(db, "live-again", team=team_a.id)
        assert next_event(ws)["data"]["name"] == "live-again"


def test_a_user_of_team_a_never_receives_team_b_events(
    live: LiveServer, db: Database, people: People
) -> None:
    team_a, team_b = people.team("a"), people.team("b")
    alice, alice_token = people.user("agent")
    bob, bob_token = people.user("agent")
    _, admin_token = people.user("admin")
    people.join(team_a, alice)
    people.join(team_b, bob)
    with (
        open_stream(live, alice_token) as a,
        open_stream(live, bob_token) as b,
        open_stream(live, admin_token) as admin,
    ):
        for ws in (a, b, admin):
            frames_until_ready(ws)
        for n in range(5):
            emit(db, f"b{n}", team=team_b.id)
        emit(db, "for-a", team=team_a.id)
        assert next_event(a)["data"]["name"] == "for-a"
        assert [next_event(b)["data"]["name"] for _ in range(5)] == [f"b{n}" for n in range(5)]
        assert [next_event(admin)["data"]["name"] for _ in range(6)] == [
            "b0",
            "b1",
            "b2",
            "b3",
            "b4",
            "for-a",
        ]
        with pytest.raises(TimeoutError):
            next_event(a, timeout=0.5)


def test_notifications_reach_only_their_own_user_even_among_admins(
    live: LiveServer, db: Database, people: People
) -> None:
    from max_server.services import notifications

    ana, ana_token = people.user("agent")
    beto, beto_token = people.user("agent")
    admin, admin_token = people.user("admin")
    with (
        open_stream(live, ana_token) as a,
        open_stream(live, beto_token) as b,
        open_stream(live, admin_token) as boss,
    ):
        for ws in (a, b, boss):
            frames_until_ready(ws)
        with db.session() as session:
            notifications.notify(session, [ana.id], "conversation.escalated", "for ana")
            notifications.notify(session, [beto.id], "customer.rate_limited", "for beto")
            notifications.notify(session, [admin.id], "conversation.escalated", "for the admin")
            session.commit()
        emit(db, "public", everyone=True)  # a marker: whatever was due to arrive came before it

        def received(ws: ClientConnection) -> list[str]:
            got = []
            while True:
                event = next_event(ws)
                if event["type"] != "notification.created":
                    assert event["data"]["name"] == "public"
                    return got
                got.append(event["data"]["text"])

        assert received(a) == ["for ana"]
        assert received(b) == ["for beto"]
        assert received(boss) == ["for the admin"]
    # Polling over HTTP applies the same rule, and so does a replay.
    polled = httpx.get(f"{live.url}/api/v1/events", params={"after": 0}, headers=bearer(admin_token)).json()
    assert [e["data"]["text"] for e in polled["events"] if e["type"] == "notification.created"] == [
        "for the admin"
    ]
    with open_stream(live, admin_token, after=0) as replay:
        replayed, _ = frames_until_ready(replay)
    assert [e["data"].get("text") for e in replayed] == ["for the admin", None]


def test_a_too_old_position_is_told_to_resync(live: LiveServer, db: Database, people: People) -> None:
    _, token = people.user("agent")
    with open_stream(live, token, after=10_000) as ws:
        frame = json.loads(ws.recv(timeout=10))
        assert frame["control"] == "resync"
        assert frame["latest_seq"] == 0


def test_resuming_after_events_that_retention_pruned_is_told_to_resync(
    live: LiveServer, db: Database, people: People
) -> None:
    _, token = people.user("agent")
    with open_stream(live, token) as ws:
        frames_until_ready(ws)
        for n in range(4):
            emit(db, f"old{n}", everyone=True)
        assert [next_event(ws)["seq"] for _ in range(4)] == [1, 2, 3, 4]  # all sequenced
    with db.session() as session:
        later = max(e.created_at for e in events.read_after(session, 0)) + timedelta(days=1)
        assert events.prune(session, later) == 3  # retention keeps only the newest (seq 4)
        session.commit()
    with open_stream(live, token, after=1) as ws:  # seq 2 and 3 are gone: it cannot resume
        frame = json.loads(ws.recv(timeout=10))
        assert frame["control"] == "resync"
        assert frame["latest_seq"] == 4
        replayed, ready = frames_until_ready(ws)
        assert replayed == [] and ready["latest_seq"] == 4
        emit(db, "new", everyone=True)  # and it carries on live from there
        event = next_event(ws)
        assert (event["seq"], event["data"]["name"]) == (5, "new")
    with open_stream(live, token, after=3) as ws:  # nothing after 3 was lost: a plain resume
        replayed, _ = frames_until_ready(ws)
        assert [e["data"]["name"] for e in replayed] == ["old3", "new"]


def test_the_token_may_come_in_the_query(live: LiveServer, db: Database, people: People) -> None:
    _, token = people.user("agent")
    with open_stream(live, token, via_query=True) as ws:
        frames_until_ready(ws)
        emit(db, "hi", everyone=True)
        assert next_event(ws)["data"]["name"] == "hi"


def test_a_revoked_token_s_connection_is_closed(
    live: LiveServer, people: People, monkeypatch: pytest.MonkeyPatch
) -> None:
    from max_server.api import events as events_api

    monkeypatch.setattr(events_api, "RECHECK_SECONDS", 0.2)
    user, token = people.user("agent")
    extra = httpx.post(
        f"{live.url}/api/v1/users/{user.id}/tokens", json={"name": "ws"}, headers=bearer(token)
    ).json()
    with open_stream(live, extra["token"]) as ws:
        frames_until_ready(ws)
        httpx.delete(f"{live.url}/api/v1/tokens/{extra['api_token']['id']}", headers=bearer(token))
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=10)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4401


def test_events_can_be_polled_over_http(live: LiveServer, db: Database, people: People) -> None:
    team_a = people.team("a")
    agent, token = people.user("agent")
    people.join(team_a, agent)
    for n in range(3):
        emit(db, f"e{n}", team=team_a.id)
        emit(db, f"x{n}", team=None)
    deadline_ok = False
    for _ in range(100):
        body = httpx.get(
            f"{live.url}/api/v1/events", params={"after": 0, "limit": 2}, headers=bearer(token)
        ).json()
        if body["latest_seq"] == 6:
            deadline_ok = True
            break
        time.sleep(0.05)
    assert deadline_ok
    names, cursor = [], None
    while True:
        params: dict[str, Any] = {"after": 0, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = httpx.get(f"{live.url}/api/v1/events", params=params, headers=bearer(token)).json()
        names += [e["data"]["name"] for e in page["events"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert names == ["e0", "e1", "e2"]


def emit_many(db: Database, names: list[str]) -> None:
    """One transaction: the sequencer numbers them together and the broadcaster hands them to
    each connection as one batch."""
    with db.session() as session:
        for name in names:
            events.emit(session, "test.event", {"name": name}, to=events.audience(everyone=True))
        session.commit()


def test_a_batch_reaches_the_client_whole_and_in_order(
    live: LiveServer, db: Database, people: People
) -> None:
    _, token = people.user("admin")
    names = [f"batch-{n}" for n in range(40)]
    with open_stream(live, token) as ws:
        frames_until_ready(ws)
        emit_many(db, names)
        got = [next_event(ws) for _ in names]
    assert [e["data"]["name"] for e in got] == names
    assert [e["seq"] for e in got] == sorted(e["seq"] for e in got)


def test_a_client_too_far_behind_is_told_to_resync_and_loses_nothing(
    live: LiveServer, db: Database, people: People, monkeypatch: pytest.MonkeyPatch
) -> None:
    from max_server import realtime

    monkeypatch.setattr(realtime, "QUEUE_LIMIT", 5)  # a mailbox of 5: one batch of 20 overflows it
    _, token = people.user("admin")
    names = [f"flood-{n}" for n in range(20)]
    with open_stream(live, token) as ws:
        _, ready = frames_until_ready(ws)
        emit_many(db, names)
        frame = json.loads(ws.recv(timeout=10))
        assert frame == {"control": "resync", "latest_seq": ready["latest_seq"], "reason": "client too slow"}
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4408
    monkeypatch.setattr(realtime, "QUEUE_LIMIT", 10_000)
    # Resuming from the position it was told replays every event it missed, in order.
    with open_stream(live, token, after=ready["latest_seq"]) as ws:
        replayed, _ = frames_until_ready(ws)
        got = replayed + [next_event(ws) for _ in range(len(names) - len(replayed))]
    assert [e["data"]["name"] for e in got] == names
