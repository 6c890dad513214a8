"""The worker's own threads: woken at once by an enqueue (in this process, and on PostgreSQL from
another process through LISTEN/NOTIFY) although their safety-net poll is 30 s, and never killed
by a failure outside a handler."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import Session

from max_server.clock import FrozenClock
from max_server.db import Database
from max_server.jobs import queue
from max_server.jobs.worker import Worker
from max_server.models import Job
from max_server.settings import Settings
from tests.jobs.test_processes import node, wait_for
from tests.support import job_kinds

SLOW_POLL = 30.0  # the safety net: a wake-up that relied on it would take this long
PROMPT = 1.0  # what "at once" must beat, with room for a loaded machine


def enqueue(db: Database, key: str) -> int:
    with db.session() as session:
        job_id = queue.enqueue(session, "test.record", {"key": key})
        session.commit()
    assert job_id is not None
    return job_id


def state(db: Database, job_id: int) -> str:
    with db.session(write=False) as session:
        found = session.get(Job, job_id)
        assert found is not None
        return found.state


def seconds_until_done(db: Database, key: str) -> float:
    """Enqueues a job and measures how long until a worker has finished it."""
    started = time.monotonic()
    job_id = enqueue(db, key)
    while state(db, job_id) != "done":
        assert time.monotonic() - started < SLOW_POLL / 2, f"job {key} was not picked up"
        time.sleep(0.01)
    return time.monotonic() - started


@pytest.fixture
def sleepy_worker(db: Database, settings: Settings) -> Iterator[Worker]:
    worker = Worker(db, settings, concurrency=1, poll_interval=SLOW_POLL, name="sleepy")
    worker.start()
    yield worker
    worker.stop()


def test_an_enqueue_wakes_a_sleeping_worker_in_this_process_at_once(
    db: Database, sleepy_worker: Worker
) -> None:
    # Each job is enqueued while the worker sleeps (it finished the one before and found nothing).
    timings = [seconds_until_done(db, f"local{n}") for n in range(3)]
    assert max(timings) < PROMPT, timings
    assert job_kinds.count(db, "test.record") == 3


def listening_connections(db: Database) -> int:
    with db.engine.connect() as connection:
        return int(
            connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND query LIKE 'LISTEN max_%'"
                )
            ).scalar_one()
        )


def test_listen_notify_wakes_a_worker_in_another_process_at_once(postgres_db: Database) -> None:
    db = postgres_db
    with node(db, "sleepy", "--poll", str(SLOW_POLL)) as child:
        wait_for(lambda: listening_connections(db) == 1, timeout=15)
        timings = [seconds_until_done(db, f"remote{n}") for n in range(3)]
        assert child.poll() is None
    assert max(timings) < PROMPT, timings  # this process runs no worker: the child did the work


def test_a_claim_that_fails_outside_the_database_does_not_stop_the_worker(
    db: Database, sleepy_worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_claim = queue.claim
    failures: list[str] = []

    def claim_failing_once(*args: Any, **kwargs: Any) -> list[Job]:
        if not failures:
            failures.append("claim")
            raise RuntimeError("a bug outside any handler")
        return real_claim(*args, **kwargs)

    monkeypatch.setattr(queue, "claim", claim_failing_once)
    job_id = enqueue(db, "after-a-failed-claim")
    wait_for(lambda: state(db, job_id) == "done", timeout=10)
    assert failures == ["claim"]
    assert job_kinds.count(db, "test.record", "after-a-failed-claim") == 1


def test_a_failure_recording_results_lets_the_lease_lapse_and_the_job_runs_again(
    db: Database, settings: Settings, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    def now(_: Session) -> Any:
        return clock.now()

    worker = Worker(db, settings, concurrency=1, now=now, name="w", lease_seconds=30, poll_interval=SLOW_POLL)
    real_complete = queue.complete_many
    failures: list[str] = []

    def complete_failing_once(*args: Any, **kwargs: Any) -> set[int]:
        if not failures:
            failures.append("complete")
            raise RuntimeError("a bug while recording")
        return real_complete(*args, **kwargs)

    monkeypatch.setattr(queue, "complete_many", complete_failing_once)
    worker.start()
    try:
        first = enqueue(db, "first")
        wait_for(lambda: failures and not worker._running, timeout=10)
        assert state(db, first) == "running"  # not recorded, and no longer kept alive
        clock.advance(seconds=31)  # its lease lapses
        second = enqueue(db, "second")  # wakes the worker, which reclaims the first
        wait_for(lambda: state(db, first) == state(db, second) == "done", timeout=10)
    finally:
        worker.stop()
    assert job_kinds.count(db, "test.record", "first") == 2  # ran again: handlers are idempotent
    assert job_kinds.count(db, "test.record", "second") == 1


def test_a_sequenced_hook_that_fails_once_does_not_stop_sequencing(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    from max_server.models import Event
    from max_server.realtime import Sequencer
    from max_server.services import events

    seen: list[str] = []
    failures: list[str] = []

    def flaky_hook(session: object, batch: list[Event]) -> None:
        if not failures:
            failures.append("hook")
            raise RuntimeError("a hook's bug")
        seen.extend(e.data["name"] for e in batch)

    def emit(name: str) -> None:
        with db.session() as session:
            events.emit(session, "test.event", {"name": name}, to=events.audience(everyone=True))
            session.commit()

    def latest() -> int:
        with db.session(write=False) as session:
            return events.latest_seq(session)

    events.on_sequenced(flaky_hook)
    sequencer = Sequencer(db, poll_interval=SLOW_POLL)
    sequencer.start()
    try:
        emit("first")
        wait_for(lambda: latest() == 1, timeout=10)
        emit("second")
        wait_for(lambda: latest() == 2, timeout=10)
    finally:
        sequencer.stop()
        events._hooks.remove(flaky_hook)
    assert failures == ["hook"]
    assert seen == ["first", "second"]  # the failed batch was sequenced again, once
    assert "a hook's bug" in caplog.text
