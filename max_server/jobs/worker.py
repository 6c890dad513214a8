"""The worker: threads that claim due jobs, run their handlers, and record the outcome.

Wake-ups come from this process (after a commit) and, on PostgreSQL, from LISTEN/NOTIFY; a slow
poll remains as the safety net. Leases are extended while a handler runs, so a long download is
not taken over; a worker that dies stops extending them and another process reclaims the job.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from max_server import metrics
from max_server.db import Database
from max_server.jobs import queue, registry
from max_server.jobs.registry import JobContext, PermanentFailure, RetryLater
from max_server.logs import Redactor
from max_server.models import Job
from max_server.settings import Settings
from max_server.wakeup import SIGNALS

log = logging.getLogger("max.jobs")
NowSource = Callable[[Session], datetime]


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Worker:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        concurrency: int | None = None,
        now: NowSource = queue.db_now,
        name: str | None = None,
        lease_seconds: float | None = None,
        poll_interval: float | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.concurrency = concurrency or settings.jobs.concurrency
        self.now = now
        self.name = name or worker_name()
        self.lease = float(lease_seconds or settings.jobs.lease)
        self.poll = poll_interval or settings.jobs.poll_interval
        self.batch = settings.jobs.claim_batch
        self._stop = threading.Event()
        # One wake-up flag per thread: with a shared one, a thread clearing it could swallow the
        # wake-up (or the stop) meant for a thread that was busy and is only now going to sleep.
        self._wakes: list[threading.Event] = []
        self._threads: list[threading.Thread] = []
        self._running: dict[int, str] = {}  # job id -> thread name
        self._running_lock = threading.Lock()
        self._last_reap: datetime | None = None
        self._redactor = Redactor()

    # Lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        for n in range(self.concurrency):
            wake = SIGNALS.subscribe("jobs")
            self._wakes.append(wake)
            thread = threading.Thread(target=self._loop, args=(wake,), name=f"max-worker-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)
        heartbeat = threading.Thread(target=self._heartbeat, name="max-worker-heartbeat", daemon=True)
        heartbeat.start()
        self._threads.append(heartbeat)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for wake in self._wakes:
            wake.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for wake in self._wakes:
            SIGNALS.unsubscribe("jobs", wake)

    # One step, also used directly by tests ------------------------------------------------
    def run_once(self, limit: int = 1) -> int:
        """Claims and runs up to ``limit`` due jobs in this thread; returns how many ran."""
        jobs = self._claim(limit)
        self._run_all(jobs)
        return len(jobs)

    def drain(self, max_jobs: int = 10_000) -> int:
        """Runs due jobs until none is left (tests and tools)."""
        total = 0
        while total < max_jobs:
            ran = self.run_once(limit=10)
            if not ran:
                return total
            total += ran
        return total

    # Internals ----------------------------------------------------------------------------
    def _loop(self, wake: threading.Event) -> None:
        """Never ends before ``stop``: a thread that died would leave its share of the queue
        to the slow poll of other processes, or (one process on SQLite) to nobody."""
        backoff = 0.5
        while not self._stop.is_set():
            try:
                jobs = self._claim(self.batch)
                backoff = 0.5
            except Exception as exc:
                if isinstance(exc, SQLAlchemyError):  # its text may carry row data: the type only
                    log.warning("cannot claim jobs (%s); retrying in %.1fs", type(exc).__name__, backoff)
                else:
                    log.exception("cannot claim jobs; retrying in %.1fs", backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 15.0)
                continue
            if not jobs:
                wake.wait(self.poll)
                wake.clear()
                continue
            try:
                self._run_all(jobs)
            except Exception:
                # Whatever was not recorded stops being extended: its lease lapses, and the job
                # runs again (handlers are idempotent).
                log.exception("running %d claimed job(s) failed; their leases will lapse", len(jobs))
                self._forget(jobs)
                self._stop.wait(backoff)

    def _claim(self, limit: int) -> list[Job]:
        with self.db.session() as session:
            now = self.now(session)
            if self._last_reap is None or (now - self._last_reap).total_seconds() >= self.lease / 2:
                self._last_reap = now
                reaped = queue.reap(session, now)
                if reaped:
                    log.warning("reclaimed %d job(s) whose worker went silent", reaped)
            jobs = queue.claim(session, self.name, now, self.lease, limit)
            session.commit()
        with self._running_lock:  # the heartbeat keeps every claimed job's lease alive
            for job in jobs:
                self._running[job.id or 0] = threading.current_thread().name
        return jobs

    def _run_all(self, jobs: list[Job]) -> None:
        """Runs claimed jobs one after another (a kind with a batch handler: its jobs together);
        successes are recorded together (one transaction for the batch), failures one by one
        with their retry."""
        done: list[tuple[Job, float]] = []
        groups = _grouped(jobs)
        for index, group in enumerate(groups):
            if self._stop.is_set():
                self._release([job for rest in groups[index:] for job in rest])
                break
            for job, (outcome, error, retry_after, seconds) in zip(
                group, self._execute_group(group), strict=True
            ):
                if outcome == "done":
                    done.append((job, seconds))
                else:
                    self._record(job, outcome, self._redactor.redact(error), retry_after, seconds)
        if done:
            self._record_done(done)

    def _execute_group(self, group: list[Job]) -> list[tuple[str, str, float | None, float]]:
        kind = registry.kind(group[0].kind)
        if len(group) == 1 or kind is None or kind.batch is None:
            return [self._execute(job) for job in group]
        started = time.perf_counter()
        try:
            raised = kind.batch([self._context(job) for job in group], [dict(j.payload) for j in group])
            if len(raised) != len(group):
                raise RuntimeError(
                    f"the batch handler of {kind.name} answered for {len(raised)} of {len(group)} jobs"
                )
        except Exception as exc:  # the shared part failed: every job of the group saw it
            raised = [exc] * len(group)
        seconds = (time.perf_counter() - started) / len(group)
        return [(*self._outcome(job, kind, exc), seconds) for job, exc in zip(group, raised, strict=True)]

    def _context(self, job: Job) -> JobContext:
        assert job.id is not None
        return JobContext(
            db=self.db,
            settings=self.settings,
            job_id=job.id,
            kind=job.kind,
            attempt=job.attempts,
            max_attempts=job.max_attempts,
            worker_id=self.name,
        )

    def _execute(self, job: Job) -> tuple[str, str, float | None, float]:
        kind = registry.kind(job.kind)
        started = time.perf_counter()
        exc: BaseException | None = None
        try:
            if kind is None:
                raise PermanentFailure(f"no handler for job kind {job.kind!r}")
            kind.handler(self._context(job), dict(job.payload))
        except Exception as raised:
            exc = raised
        return (*self._outcome(job, kind, exc), time.perf_counter() - started)

    def _outcome(
        self, job: Job, kind: registry.JobKind | None, exc: BaseException | None
    ) -> tuple[str, str, float | None]:
        """What a handler's exception (None: it returned) means for the job."""
        if exc is None:
            return "done", "", None
        if isinstance(exc, RetryLater):
            delay = exc.delay if exc.delay is not None else kind.policy.delay(job.attempts) if kind else 5.0
            return "retry", str(exc), delay
        if isinstance(exc, PermanentFailure):
            return "dead", str(exc), None
        error = f"{type(exc).__name__}: {exc}"
        log.warning(
            "job %s (%s) attempt %d failed: %s\n%s",
            job.id,
            job.kind,
            job.attempts,
            self._redactor.redact(error),
            self._redactor.redact("".join(traceback.format_exception(exc)[-3:])),
        )
        return "retry", error, kind.policy.delay(job.attempts) if kind else None

    def _forget(self, jobs: list[Job]) -> None:
        with self._running_lock:
            for job in jobs:
                self._running.pop(job.id or 0, None)

    def _release(self, jobs: list[Job]) -> None:
        """Claimed but not started (the process is stopping): back to the queue at once."""
        try:
            with self.db.session() as session:
                queue.release(session, [j.id for j in jobs if j.id is not None], self.name)
                session.commit()
        except SQLAlchemyError as exc:  # their leases expire and another worker takes them
            log.warning("cannot release %d job(s) (%s)", len(jobs), type(exc).__name__)
        self._forget(jobs)

    def _record_done(self, done: list[tuple[Job, float]]) -> None:
        ids = [job.id for job, _ in done if job.id is not None]
        finished: set[int] = set()
        for attempt in range(5):  # the database may blink; the leases protect us meanwhile
            try:
                with self.db.session() as session:
                    finished = queue.complete_many(session, ids, self.name, self.now(session))
                    session.commit()
                break
            except SQLAlchemyError as exc:
                log.warning("cannot record %d finished job(s) (%s); retrying", len(ids), type(exc).__name__)
                self._stop.wait(0.5 * (attempt + 1))
        self._forget([job for job, _ in done])
        for job, seconds in done:
            self._log(job, "done" if job.id in finished else "", seconds)

    def _record(self, job: Job, outcome: str, error: str, retry_after: float | None, seconds: float) -> None:
        assert job.id is not None
        state = ""
        for attempt in range(5):  # the database may blink; the lease protects us meanwhile
            try:
                with self.db.session() as session:
                    now = self.now(session)
                    state = queue.fail(session, job, self.name, now, error, retry_after=retry_after)
                    session.commit()
                break
            except SQLAlchemyError as exc:
                log.warning("cannot record job %s (%s); retrying", job.id, type(exc).__name__)
                self._stop.wait(0.5 * (attempt + 1))
        self._forget([job])
        self._log(job, state, seconds)

    def _log(self, job: Job, state: str, seconds: float) -> None:
        metrics.JOBS_RUN.labels(job.kind, state or "lost").inc()
        level = logging.INFO if state in ("done", "queued") else logging.WARNING
        log.log(
            level,
            "job %s %s: %s",
            job.id,
            job.kind,
            state or "lost (another worker holds it)",
            extra={
                "job_id": job.id,
                "kind": job.kind,
                "attempt": job.attempts,
                "ms": round(seconds * 1000, 1),
            },
        )

    def _heartbeat(self) -> None:
        while not self._stop.wait(max(self.lease / 3, 0.2)):
            with self._running_lock:
                ids = list(self._running)
            if not ids:
                continue
            try:
                with self.db.session() as session:
                    queue.extend_leases(session, self.name, ids, self.now(session), self.lease)
                    session.commit()
            except SQLAlchemyError as exc:
                log.warning("cannot extend leases (%s)", type(exc).__name__)
            except Exception:  # the heartbeat must outlive any one failure
                log.exception("cannot extend leases")


def _grouped(jobs: list[Job]) -> list[list[Job]]:
    """The claimed jobs in claim order, those of a kind with a batch handler gathered at the
    place of the first of them."""
    groups: dict[str, list[Job]] = {}
    ordered: list[list[Job]] = []
    for job in jobs:
        found = registry.kind(job.kind)
        if found is None or found.batch is None:
            ordered.append([job])
        elif job.kind in groups:
            groups[job.kind].append(job)
        else:
            groups[job.kind] = [job]
            ordered.append(groups[job.kind])
    return ordered
