"""``max jobs`` and ``max events tail`` against a live server with its worker running."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from max_server.app import create_app
from max_server.db import Database
from max_server.jobs import queue
from max_server.services import events
from max_server.settings import Settings
from tests.cli.conftest import Max
from tests.conftest import People
from tests.support import job_kinds
from tests.support.live import LiveServer
from tests.support.processes import clean_env, max_command
from tests.support.tcpproxy import TcpProxy


@pytest.fixture
def working_server(settings: Settings, db: Database) -> Iterator[LiveServer]:
    with LiveServer(create_app(settings, db=db, background=True)) as server:
        yield server


def wait_for_state(max_cli: Max, env: dict[str, str], job_id: str, state: str) -> dict:
    for _ in range(200):
        job = max_cli.json("jobs", "show", job_id, env=env)
        if job["state"] == state:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never became {state}: {job}")


def test_a_dead_job_is_listed_and_retried(
    max_cli: Max, working_server: LiveServer, db: Database, people: People, tmp_path: Path
) -> None:
    _, token = people.user("admin")
    env = {"MAX_URL": working_server.url, "MAX_TOKEN": token}
    with db.session() as session:
        job_id = queue.enqueue(session, "test.flaky", {"key": "cli", "fail_times": 1}, max_attempts=1)
        session.commit()
    dead = wait_for_state(max_cli, env, str(job_id), "dead")
    assert "receiver down" in dead["last_error"]
    listed = max_cli.json("jobs", "list", "--state", "dead", env=env)
    assert [j["id"] for j in listed["jobs"]] == [str(job_id)]
    human = max_cli("jobs", "list", "--state", "dead", env=env)
    assert "test.flaky" in human.stdout
    retried = max_cli.json("jobs", "retry", str(job_id), env=env)
    assert retried["state"] in ("queued", "running", "done")
    wait_for_state(max_cli, env, str(job_id), "done")
    assert job_kinds.count(db, "test.finished", "cli") == 1
    again = max_cli("jobs", "retry", "999999", "--json", env=env)
    assert again.exit_code == 3


def test_retrying_a_dead_job_whose_dedupe_key_is_held_exits_1_and_names_the_holder(
    max_cli: Max, working_server: LiveServer, db: Database, people: People
) -> None:
    _, token = people.user("admin")
    env = {"MAX_URL": working_server.url, "MAX_TOKEN": token}
    with db.session() as session:
        dead = queue.enqueue(session, "test.permanent", {}, dedupe_key="report:1")
        session.commit()
    wait_for_state(max_cli, env, str(dead), "dead")
    with db.session() as session:  # not due for an hour: it stays queued, holding the key
        later = queue.db_now(session) + timedelta(hours=1)
        holder = queue.enqueue(session, "test.record", {"key": "r"}, dedupe_key="report:1", run_at=later)
        session.commit()
    refused = max_cli("jobs", "retry", str(dead), "--json", env=env)
    assert refused.exit_code == 1, refused.stdout
    assert refused.stdout == ""
    error = json.loads(refused.stderr)["error"]
    assert error["code"] == "job_duplicate_active"
    assert error["details"]["active_job_id"] == str(holder)
    human = max_cli("jobs", "retry", str(dead), env=env)
    assert human.exit_code == 1
    assert human.stderr.startswith(f"Error: job {dead} cannot run again now: job {holder} (queued)")
    assert max_cli.json("jobs", "show", str(dead), env=env)["state"] == "dead"


def test_events_tail_prints_envelopes_one_per_line(
    max_cli: Max, working_server: LiveServer, db: Database, people: People
) -> None:
    _, token = people.user("admin")
    for n in range(3):
        with db.session() as session:
            events.emit(session, "test.event", {"n": n}, to=events.audience(everyone=True))
            session.commit()
    result = max_cli(
        "events",
        "tail",
        "--after",
        "0",
        "--count",
        "3",
        "--json",
        env={"MAX_URL": working_server.url, "MAX_TOKEN": token},
    )
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    envelopes = [json.loads(line) for line in lines]
    assert [e["data"]["n"] for e in envelopes] == [0, 1, 2]
    assert [e["seq"] for e in envelopes] == [1, 2, 3]
    assert all(set(e) == {"id", "seq", "type", "created_at", "data"} for e in envelopes)
    refused = max_cli(
        "events", "tail", "--count", "1", env={"MAX_URL": working_server.url, "MAX_TOKEN": "max_" + "n" * 43}
    )
    assert refused.exit_code == 4


def test_events_tail_fails_at_once_when_the_server_cannot_be_reached(max_cli: Max) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    started = time.monotonic()
    result = max_cli("events", "tail", "--json", env={"MAX_URL": url, "MAX_TOKEN": "max_" + "t" * 43})
    assert result.exit_code == 1
    assert time.monotonic() - started < 10
    assert result.stdout == ""
    error = json.loads(result.stderr)["error"]
    assert error["code"] == "unreachable"
    assert f"cannot reach the MAX server at {url}" in error["message"]


def test_events_tail_reconnects_after_a_dropped_connection(
    live: LiveServer, db: Database, people: People, tmp_path: Path
) -> None:
    _, token = people.user("admin")

    def emit(n: int) -> None:
        with db.session() as session:
            events.emit(session, "test.event", {"n": n}, to=events.audience(everyone=True))
            session.commit()

    port = int(live.url.rsplit(":", 1)[1])
    with (
        TcpProxy("127.0.0.1", port) as proxy,
        subprocess.Popen(
            max_command("events", "tail", "--after", "0", "--count", "2", "--json"),
            env=clean_env(tmp_path, MAX_URL=f"http://127.0.0.1:{proxy.port}", MAX_TOKEN=token),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        ) as tail,
    ):
        try:
            emit(1)
            assert tail.stdout is not None
            first = json.loads(tail.stdout.readline())
            assert first["data"] == {"n": 1}
            assert proxy.cut() >= 1  # the connection drops; reconnecting fails for a while
            emit(2)
            proxy.restore()
            second = json.loads(tail.stdout.readline())
            assert tail.wait(30) == 0
        finally:
            if tail.poll() is None:
                tail.kill()
        assert proxy.accepted >= 2  # it came back on a new connection
    assert (second["seq"], second["data"]) == (first["seq"] + 1, {"n": 2})
