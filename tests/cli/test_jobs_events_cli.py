"""``max jobs`` and ``max events tail`` against a live server with its worker running."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
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
