"""Jobs and periodic ticks across real processes, with ``kill -9``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from sqlmodel import select

from max_server.db import Database
from max_server.jobs import queue
from max_server.models import Job
from tests.support import job_kinds


@contextmanager
def node(db: Database, name: str, *args: str) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.node", db.url, "--name", name, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if proc.stdout:
            proc.stdout.close()


def wait_for(predicate, timeout: float = 30.0, every: float = 0.1):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out waiting")


def test_a_worker_killed_mid_job_is_replaced_and_the_job_finishes_once(db: Database) -> None:
    with db.session() as session:
        job_id = queue.enqueue(session, "test.slow", {"key": "k", "seconds": 3})
        session.commit()
    with node(db, "A", "--lease", "2") as first:
        wait_for(lambda: job_kinds.count(db, "test.started", "k") == 1)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    with node(db, "B", "--lease", "2"):
        wait_for(lambda: job_kinds.count(db, "test.finished", "k") == 1, timeout=40)
        time.sleep(0.5)
    assert job_kinds.count(db, "test.finished", "k") == 1
    assert job_kinds.count(db, "test.started", "k") == 2
    with db.session(write=False) as session:
        done = session.get(Job, job_id)
        assert done is not None
        assert (done.state, done.attempts) == ("done", 2)
        assert done.last_error is not None
        assert "lease expired" in done.last_error


def test_two_nodes_run_each_tick_exactly_once_even_when_one_dies(postgres_db: Database) -> None:
    db = postgres_db
    with (
        node(db, "N1", "--tick", "1", "--lease", "2", "--slow-every", "4") as n1,
        node(db, "N2", "--tick", "1", "--lease", "2", "--slow-every", "4") as n2,
    ):
        # Wait for a slow tick to be running, then kill the node that holds it.
        def slow_running() -> Job | None:
            with db.session(write=False) as session:
                for job in session.exec(select(Job).where(Job.kind == "test.tick", Job.state == "running")):
                    if int(job.payload["tick"]) % 4 == 0 and job.locked_by:
                        return job
            return None

        victim_job = wait_for(slow_running, timeout=20)
        victim, survivor = (n1, n2) if victim_job.locked_by.startswith("N1") else (n2, n1)
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait()
        # The survivor reclaims the tick after the lease and keeps ticking.
        wait_for(lambda: job_kinds.count(db, "test.tick", str(victim_job.payload["tick"])) == 1, timeout=30)
        first_after = int(victim_job.payload["tick"]) + 3
        wait_for(lambda: str(first_after) in job_kinds.keys(db, "test.tick"), timeout=20)
        assert survivor.poll() is None
    finished = Counter(int(k) for k in job_kinds.keys(db, "test.tick"))
    assert finished, "no tick ran"
    assert max(finished.values()) == 1, f"a tick ran twice: {finished}"
    ticks = sorted(finished)
    assert ticks == list(range(ticks[0], ticks[-1] + 1)), f"a tick was lost: {ticks}"
    assert len(ticks) >= 5
    with db.session(write=False) as session:
        assert session.exec(select(Job).where(Job.kind == "test.tick", Job.state == "dead")).first() is None
