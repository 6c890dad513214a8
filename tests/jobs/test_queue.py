"""The job queue on both databases, with the clock injected."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from max_server.clock import FrozenClock
from max_server.db import Database
from max_server.errors import Conflict
from max_server.jobs import queue
from max_server.jobs.registry import PeriodicTask, RetryPolicy
from max_server.jobs.scheduler import fire
from max_server.jobs.worker import Worker
from max_server.models import AuditEntry, Job
from max_server.services import audit
from tests.conftest import People, bearer
from tests.support import job_kinds


def enqueue(db: Database, kind: str, payload: dict, **kwargs: object) -> int | None:
    with db.session() as session:
        job_id = queue.enqueue(session, kind, payload, **kwargs)  # type: ignore[arg-type]
        session.commit()
        return job_id


def job(db: Database, job_id: int) -> Job:
    with db.session(write=False) as session:
        found = session.get(Job, job_id)
        assert found is not None
        return found


def test_enqueued_job_runs_once(db: Database, make_worker: Callable[..., Worker]) -> None:
    job_id = enqueue(db, "test.record", {"key": "a"})
    assert job_id is not None
    worker = make_worker()
    assert worker.drain() == 1
    assert worker.drain() == 0
    done = job(db, job_id)
    assert (done.state, done.attempts, done.locked_by) == ("done", 1, None)
    assert job_kinds.count(db, "test.record", "a") == 1


def test_an_uncommitted_enqueue_leaves_nothing(db: Database, make_worker: Callable[..., Worker]) -> None:
    with db.session() as session:
        queue.enqueue(session, "test.record", {"key": "x"})
        session.rollback()
    assert make_worker().drain() == 0


def test_dedupe_key_is_unique_among_queued_and_running_only(
    db: Database, make_worker: Callable[..., Worker]
) -> None:
    first = enqueue(db, "test.record", {"key": "d"}, dedupe_key="sync:1")
    assert first is not None
    assert enqueue(db, "test.record", {"key": "d"}, dedupe_key="sync:1") is None
    make_worker().drain()
    again = enqueue(db, "test.record", {"key": "d"}, dedupe_key="sync:1")
    assert again is not None and again != first


def test_failures_retry_with_backoff_then_succeed(
    db: Database, clock: FrozenClock, make_worker: Callable[..., Worker]
) -> None:
    job_id = enqueue(db, "test.flaky", {"key": "f", "fail_times": 2})
    assert job_id is not None
    worker = make_worker()
    assert worker.drain() == 1
    failed = job(db, job_id)
    assert failed.state == "queued"
    assert failed.last_error is not None and "receiver down" in failed.last_error
    assert failed.run_at is not None
    delay = (failed.run_at - clock.now()).total_seconds()
    assert 5 <= delay <= 10  # base 10 s, equal jitter
    assert worker.drain() == 0  # not due yet
    clock.advance(seconds=delay)
    assert worker.drain() == 1
    second = job(db, job_id)
    assert second.run_at is not None
    assert 10 <= (second.run_at - clock.now()).total_seconds() <= 20  # doubled
    clock.advance(seconds=20)
    assert worker.drain() == 1
    assert job(db, job_id).state == "done"
    assert job_kinds.count(db, "test.finished", "f") == 1
    assert job_kinds.count(db, "test.attempt", "f") == 3


def test_a_job_out_of_attempts_is_dead_with_its_last_error(
    db: Database, clock: FrozenClock, make_worker: Callable[..., Worker]
) -> None:
    job_id = enqueue(db, "test.flaky", {"key": "g", "fail_times": 99})
    assert job_id is not None
    worker = make_worker()
    for _ in range(4):
        assert worker.drain() == 1
        clock.advance(minutes=2)
    dead = job(db, job_id)
    assert (dead.state, dead.attempts) == ("dead", 4)
    assert dead.finished_at is not None
    assert dead.last_error == "ConnectionError: receiver down (attempt 4)"


def test_permanent_failures_and_unknown_kinds_die_at_once(
    db: Database, make_worker: Callable[..., Worker]
) -> None:
    permanent = enqueue(db, "test.permanent", {})
    unknown = enqueue(db, "no.such.kind", {})
    assert permanent is not None and unknown is not None
    make_worker().drain()
    assert (job(db, permanent).state, job(db, permanent).last_error) == (
        "dead",
        "the recipient does not exist",
    )
    assert job(db, unknown).state == "dead"
    assert "no handler" in (job(db, unknown).last_error or "")


def test_jobs_with_one_ordering_key_run_one_at_a_time_in_order(db: Database, clock: FrozenClock) -> None:
    ids = [enqueue(db, "test.record", {"key": f"o{n}"}, ordering_key="conversation:1") for n in range(3)]
    other = enqueue(db, "test.record", {"key": "free"}, ordering_key="conversation:2")
    with db.session() as session:
        claimed = queue.claim(session, "w", clock.now(), 30, limit=10)
        session.commit()
    assert [j.id for j in claimed] == [ids[0], other]
    with db.session() as session:
        assert queue.claim(session, "w", clock.now(), 30, limit=10) == []
        assert queue.complete(session, ids[0], "w", clock.now())  # type: ignore[arg-type]
        session.commit()
    with db.session() as session:
        assert [j.id for j in queue.claim(session, "w", clock.now(), 30, limit=10)] == [ids[1]]
        session.commit()


def test_a_retry_that_came_due_is_not_starved_by_a_stream_of_new_jobs(
    db: Database, clock: FrozenClock, make_worker: Callable[..., Worker]
) -> None:
    retried = enqueue(db, "test.flaky", {"key": "starve", "fail_times": 1})
    scheduled = enqueue(db, "test.record", {"key": "later"}, run_at=clock.now() + timedelta(seconds=30))
    worker = make_worker()
    assert worker.run_once() == 1  # the first attempt fails: queued again with a backoff
    failed = job(db, retried)  # type: ignore[arg-type]
    assert failed.state == "queued" and failed.run_at is not None
    clock.advance(seconds=60)  # both are due now
    claimed: list[int | None] = []
    for n in range(6):  # one worker slot, and two new jobs arrive every round
        enqueue(db, "test.record", {"key": f"new{n}a"})
        enqueue(db, "test.record", {"key": f"new{n}b"})
        with db.session() as session:
            [taken] = queue.claim(session, "w", clock.now(), 30, limit=1)
            assert queue.complete(session, taken.id, "w", clock.now())  # type: ignore[arg-type]
            session.commit()
        claimed.append(taken.id)
        clock.advance(seconds=1)
    # The longest due run first: the retry (due first), then the scheduled job, then new ones.
    assert claimed[:2] == [retried, scheduled]


def test_a_lost_worker_s_job_is_reclaimed_after_its_lease(
    db: Database, clock: FrozenClock, make_worker: Callable[..., Worker]
) -> None:
    job_id = enqueue(db, "test.record", {"key": "lease"})
    with db.session() as session:  # worker A claims, then vanishes
        assert [j.id for j in queue.claim(session, "A", clock.now(), 30)] == [job_id]
        session.commit()
    b = make_worker("B")
    assert b.drain() == 0  # the lease still holds
    clock.advance(seconds=31)
    assert b.drain() == 1
    finished = job(db, job_id)  # type: ignore[arg-type]
    assert (finished.state, finished.attempts) == ("done", 2)
    with db.session() as session:  # A coming back cannot overwrite B's result
        assert not queue.complete(session, job_id, "A", clock.now())  # type: ignore[arg-type]
    assert job_kinds.count(db, "test.record", "lease") == 1


def test_a_lease_lost_on_the_last_attempt_is_dead(db: Database, clock: FrozenClock) -> None:
    job_id = enqueue(db, "test.record", {"key": "x"}, max_attempts=1)
    with db.session() as session:
        queue.claim(session, "A", clock.now(), 30)
        session.commit()
    with db.session() as session:
        assert queue.reap(session, clock.now() + timedelta(seconds=31)) == 1
        session.commit()
    assert job(db, job_id).state == "dead"  # type: ignore[arg-type]


def test_retry_now_and_prune(db: Database, clock: FrozenClock, make_worker: Callable[..., Worker]) -> None:
    dead = enqueue(db, "test.permanent", {})
    done = enqueue(db, "test.record", {"key": "p"})
    make_worker().drain()
    with db.session() as session:
        queue.retry_now(session, dead)  # type: ignore[arg-type]
        session.commit()
    again = job(db, dead)  # type: ignore[arg-type]
    assert (again.state, again.attempts, again.finished_at) == ("queued", 0, None)
    with db.session() as session:
        later = clock.now() + timedelta(days=1)
        assert queue.prune(session, done_before=later, dead_before=later) == 1
        session.commit()
        assert session.get(Job, done) is None


def test_retrying_a_dead_job_whose_dedupe_key_is_held_is_a_clear_conflict(
    db: Database, clock: FrozenClock, make_worker: Callable[..., Worker]
) -> None:
    dead = enqueue(db, "test.permanent", {}, dedupe_key="sync:7")
    assert dead is not None
    make_worker().drain()
    assert job(db, dead).state == "dead"
    holder = enqueue(
        db, "test.record", {"key": "h"}, dedupe_key="sync:7", run_at=clock.now() + timedelta(hours=1)
    )
    assert holder is not None
    with db.session() as session:
        with pytest.raises(Conflict) as refused:
            queue.retry_now(session, dead)
        audit.record(session, job_kinds.TESTER, "test.after_conflict", "test", "t", {})
        session.commit()  # the transaction survives the refusal
    assert (refused.value.status_code, refused.value.code) == (409, "job_duplicate_active")
    assert f"job {holder} (queued) holds its dedupe key 'sync:7'" in refused.value.message
    assert refused.value.details == {"dedupe_key": "sync:7", "active_job_id": str(holder)}
    assert job(db, dead).state == "dead"
    assert job_kinds.count(db, "test.after_conflict") == 1
    # Once the holder has finished, the same retry goes through.
    clock.advance(hours=1)
    assert make_worker().drain() == 1
    with db.session() as session:
        queue.retry_now(session, dead)
        session.commit()
    assert job(db, dead).state == "queued"


def test_the_api_answers_409_when_a_retry_would_duplicate_an_active_job(
    db: Database, clock: FrozenClock, make_worker: Callable[..., Worker], api: TestClient, people: People
) -> None:
    _, admin = people.user("admin")
    dead = enqueue(db, "test.permanent", {}, dedupe_key="sync:8")
    make_worker().drain()
    holder = enqueue(
        db, "test.record", {"key": "h"}, dedupe_key="sync:8", run_at=clock.now() + timedelta(hours=1)
    )
    response = api.post(f"/api/v1/jobs/{dead}/retry", headers=bearer(admin))
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "job_duplicate_active"
    assert f"job {holder} (queued)" in error["message"]
    assert error["details"]["active_job_id"] == str(holder)
    assert job(db, dead).state == "dead"  # type: ignore[arg-type]
    with db.session(write=False) as session:  # nothing half-written: no audit entry for a retry
        assert session.exec(select(AuditEntry).where(AuditEntry.action == "job.retried")).first() is None


def test_each_tick_enqueues_once(db: Database) -> None:
    task = PeriodicTask("test.tick", 60, "test.tick")
    with db.session() as session:
        now = queue.db_now(session)
        first = fire(session, task, now)
        second = fire(session, task, now)
        session.commit()
    assert first is not None and second is None
    with db.session() as session:
        third = fire(session, task, now + timedelta(seconds=60))
        session.commit()
    assert third is not None and third != first
    with db.session(write=False) as session:
        keys = [j.dedupe_key for j in session.exec(select(Job).order_by(Job.id))]  # type: ignore[arg-type]
    tick = int(now.timestamp()) // 60
    assert keys == [f"test.tick:{tick}", f"test.tick:{tick + 1}"]
    # A trigger that ran late catches up the ticks it missed (a bounded number of them).
    with db.session() as session:
        fire(session, task, now + timedelta(seconds=60 * 4))
        session.commit()
    with db.session(write=False) as session:
        keys = [j.dedupe_key for j in session.exec(select(Job).order_by(Job.id))]  # type: ignore[arg-type]
    assert keys[2:] == [f"test.tick:{tick + 2}", f"test.tick:{tick + 3}", f"test.tick:{tick + 4}"]


def test_retry_policy_schedule_and_jitter() -> None:
    schedule = RetryPolicy(schedule=(0, 5, 300))
    assert [schedule.delay(n) for n in (1, 2, 3, 4)] == [0, 5, 300, 300]
    exponential = RetryPolicy(base_delay=2, max_delay=100)
    for attempt, ceiling in ((1, 2), (2, 4), (3, 8), (10, 100)):
        for _ in range(20):
            assert ceiling / 2 <= exponential.delay(attempt) <= ceiling
