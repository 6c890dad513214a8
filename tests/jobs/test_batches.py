"""A kind with a batch handler: the jobs of it that a worker claimed together run in one call,
and each job still ends as it would have alone (done, retried after its delay, or dead)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from max_server.clock import FrozenClock
from max_server.db import Database
from max_server.jobs import queue
from max_server.jobs.registry import (
    JobContext,
    PermanentFailure,
    RetryLater,
    RetryPolicy,
    batch_handler,
    handler,
)
from max_server.jobs.worker import Worker
from max_server.models import Job
from tests.support import job_kinds

KIND = "test.batched"
calls: list[list[str]] = []  # the keys each batch call was given


@handler(KIND, RetryPolicy(max_attempts=3, base_delay=10, max_delay=10))
def _one(ctx: JobContext, payload: dict[str, Any]) -> None:
    calls.append([str(payload["key"])])
    _outcome(ctx, payload)


@batch_handler(KIND)
def _many(contexts: list[JobContext], payloads: list[dict[str, Any]]) -> list[BaseException | None]:
    calls.append([str(p["key"]) for p in payloads])
    if any(p["key"] == "explode" for p in payloads):
        raise ConnectionError("the shared read failed")
    outcomes: list[BaseException | None] = []
    for ctx, payload in zip(contexts, payloads, strict=True):
        try:
            _outcome(ctx, payload)
            outcomes.append(None)
        except Exception as exc:
            outcomes.append(exc)
    return outcomes


def _outcome(ctx: JobContext, payload: dict[str, Any]) -> None:
    key = str(payload["key"])
    if key.startswith("later"):
        raise RetryLater("not yet", delay=42)
    if key.startswith("never"):
        raise PermanentFailure("cannot ever work")
    job_kinds.record(ctx.db, "test.batched", key, job_id=ctx.job_id)


def enqueue(db: Database, kind: str, key: str) -> int:
    with db.session() as session:
        job_id = queue.enqueue(session, kind, {"key": key})
        session.commit()
    assert job_id is not None
    return job_id


def job(db: Database, job_id: int) -> Job:
    with db.session(write=False) as session:
        found = session.get(Job, job_id)
        assert found is not None
        return found


def test_claimed_together_they_run_in_one_call_and_each_ends_as_alone(
    db: Database, clock: FrozenClock, make_worker: Callable[..., Worker]
) -> None:
    calls.clear()
    ok = enqueue(db, KIND, "ok")
    plain = enqueue(db, "test.record", "plain")  # another kind, between them: runs on its own
    later = enqueue(db, KIND, "later")
    never = enqueue(db, KIND, "never")
    assert make_worker().run_once(limit=10) == 4
    assert calls == [["ok", "later", "never"]]
    assert job(db, ok).state == "done" and job_kinds.count(db, "test.batched", "ok") == 1
    assert job(db, plain).state == "done" and job_kinds.count(db, "test.record", "plain") == 1
    retried = job(db, later)
    assert (retried.state, retried.last_error) == ("queued", "not yet")
    assert retried.run_at == clock.now() + timedelta(seconds=42)
    dead = job(db, never)
    assert (dead.state, dead.last_error) == ("dead", "cannot ever work")


def test_a_lone_job_uses_the_plain_handler(db: Database, make_worker: Callable[..., Worker]) -> None:
    calls.clear()
    alone = enqueue(db, KIND, "alone")
    assert make_worker().run_once(limit=10) == 1
    assert calls == [["alone"]]
    assert job(db, alone).state == "done"


def test_a_batch_that_fails_as_a_whole_retries_every_job(
    db: Database, make_worker: Callable[..., Worker]
) -> None:
    calls.clear()
    ids = [enqueue(db, KIND, key) for key in ("a", "explode", "b")]
    assert make_worker().run_once(limit=10) == 3
    assert calls == [["a", "explode", "b"]]
    for job_id in ids:
        failed = job(db, job_id)
        assert (failed.state, failed.attempts) == ("queued", 1)
        assert failed.last_error == "ConnectionError: the shared read failed"
    assert job_kinds.count(db, "test.batched") == 0
