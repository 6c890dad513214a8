"""The job table's operations: enqueue inside the caller's transaction, claim with leases on the
database clock (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite has one writer), complete,
retry, reap expired leases, prune.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Integer, bindparam, delete, exists, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from max_server import wakeup
from max_server.db import dialect_insert, is_postgres
from max_server.errors import Conflict
from max_server.models import Job
from max_server.models.base import UTCDateTime

ACTIVE = ("queued", "running")
_J = Job.__table__  # type: ignore[attr-defined]
MAX_ERROR = 2000


def db_now(session: Session) -> datetime:
    """The database's clock: the one time every process agrees on."""
    if is_postgres(session):
        value = session.execute(text("SELECT clock_timestamp()")).scalar_one()
        return value.astimezone(UTC)
    raw = session.execute(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")).scalar_one()
    return datetime.fromisoformat(raw).replace(tzinfo=UTC)


def enqueue(
    session: Session,
    kind: str,
    payload: dict[str, Any] | None = None,
    *,
    run_at: datetime | None = None,
    dedupe_key: str | None = None,
    ordering_key: str | None = None,
    max_attempts: int | None = None,
) -> int | None:
    """Adds a job in the caller's transaction; returns its id, or None if ``dedupe_key`` is
    already held by a queued or running job."""
    from max_server.jobs.registry import policy_for

    values = {
        "kind": kind,
        "payload": payload or {},
        "state": "queued",
        "run_at": run_at,
        "attempts": 0,
        "max_attempts": max_attempts or policy_for(kind).max_attempts,
        "dedupe_key": dedupe_key,
        "ordering_key": ordering_key,
        "created_at": _python_now(),
    }
    statement = dialect_insert(session, _J).values(**values)
    if dedupe_key is not None:
        statement = statement.on_conflict_do_nothing(
            index_elements=["dedupe_key"], index_where=text("state IN ('queued', 'running')")
        )
    job_id = session.execute(statement.returning(_J.c.id)).scalar_one_or_none()
    if job_id is not None:
        wakeup.request(session, "jobs")
    return job_id


def join_or_enqueue(session: Session, kind: str, payload: dict[str, Any], *, ordering_key: str) -> int | None:
    """For work that reads its input fresh when it runs and whose ordering key says what it is
    (a team's assignment pass): joins a queued job of ``kind`` on ``ordering_key`` that has not
    started, or enqueues one when none is free; returns the new job's id, or None when joined.

    A joined job is held until this transaction ends, so it starts after it and sees what it
    wrote: on PostgreSQL a row lock, which claims skip (``FOR UPDATE SKIP LOCKED``); on SQLite
    the single writer. The newest such job is joined and a held one skipped, so the oldest is
    soon free to start however busy the key is: a burst of conversations is a pass or two, not
    a pass each."""
    joinable = (
        select(_J.c.id)
        .where(
            _J.c.ordering_key == ordering_key,
            _J.c.kind == kind,
            _J.c.state == "queued",
            _J.c.attempts == 0,  # not a retry waiting out its backoff
            _J.c.run_at.is_(None),
        )
        .order_by(_J.c.id.desc())
        .limit(1)
    )
    if is_postgres(session):
        joinable = joinable.with_for_update(skip_locked=True)
    if session.execute(joinable).scalar_one_or_none() is not None:
        # A worker may have passed it over while this transaction held it: wake one at commit.
        wakeup.request(session, "jobs")
        return None
    return enqueue(session, kind, payload, ordering_key=ordering_key)


def _python_now() -> datetime:
    from max_server import clock

    return clock.now()


def claim(session: Session, worker_id: str, now: datetime, lease_seconds: float, limit: int = 1) -> list[Job]:
    """Takes up to ``limit`` due jobs for ``worker_id``, the longest due first (a job without
    ``run_at`` is due since it was created). Jobs sharing an ``ordering_key`` run one at a time,
    in id order. The caller commits."""
    params = {
        "c_worker": worker_id,
        "c_now": now,
        "c_until": now + timedelta(seconds=lease_seconds),
        "c_limit": limit,
    }
    rows = session.execute(_claim_statement(is_postgres(session)), params).mappings().all()
    return sorted((Job.model_validate(dict(row)) for row in rows), key=lambda j: j.id or 0)


@cache
def _claim_statement(postgres: bool) -> Any:
    """Built once per dialect: workers claim many times a second, and building this statement
    (two aliases of the job table) cost more than running it."""
    q = _J.alias("q")
    earlier = _J.alias("earlier")
    now = bindparam("c_now", type_=UTCDateTime())
    blocked = exists().where(
        earlier.c.ordering_key == q.c.ordering_key,
        earlier.c.state.in_(ACTIVE),
        earlier.c.id < q.c.id,
    )
    due = (
        select(q.c.id)
        .where(
            q.c.state == "queued",
            or_(q.c.run_at.is_(None), q.c.run_at <= now),
            or_(q.c.ordering_key.is_(None), ~blocked),
        )
        # By due time: a retry or a scheduled job that came due waits behind only what was due
        # before it, never behind every new job (run_at NULL, "now") that keeps arriving.
        .order_by(func.coalesce(q.c.run_at, q.c.created_at), q.c.id)
        .limit(bindparam("c_limit", type_=Integer()))
    )
    if postgres:
        due = due.with_for_update(skip_locked=True, of=q)
    return (
        update(_J)
        .where(_J.c.id.in_(due.scalar_subquery()))
        .values(
            state="running",
            locked_by=bindparam("c_worker"),
            locked_until=bindparam("c_until", type_=UTCDateTime()),
            attempts=_J.c.attempts + 1,
            started_at=now,
        )
        .returning(*_J.c)
    )


def absorb_followers(session: Session, job_id: int, kind: str, ordering_key: str, now: datetime) -> int:
    """Marks done the due, queued jobs of ``kind`` behind ``job_id`` on its ordering key; returns
    how many. For work that reads its input fresh and covers whatever is there (a team's
    assignment pass reads the whole queue): the caller does that work in this transaction, after
    this statement, so it sees everything the absorbed jobs' transactions committed, and one
    pass replaces a pile of passes that would find nothing left. Jobs behind ``job_id`` on its
    key cannot start before it ends, so no other worker holds them; a rollback returns them."""
    result = session.execute(
        update(_J)
        .where(
            _J.c.ordering_key == ordering_key,
            _J.c.kind == kind,
            _J.c.state == "queued",
            _J.c.id > job_id,
            or_(_J.c.run_at.is_(None), _J.c.run_at <= now),
        )
        .values(state="done", finished_at=now)  # never started: attempts stay 0
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def complete(session: Session, job_id: int, worker_id: str, now: datetime) -> bool:
    """Marks the job done if this worker still holds it."""
    result = session.execute(
        update(_J)
        .where(_J.c.id == job_id, _J.c.state == "running", _J.c.locked_by == worker_id)
        .values(state="done", finished_at=now, locked_by=None, locked_until=None)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def complete_many(session: Session, job_ids: list[int], worker_id: str, now: datetime) -> set[int]:
    """Marks several jobs done at once (those this worker still holds); returns their ids."""
    if not job_ids:
        return set()
    rows = session.execute(
        update(_J)
        .where(_J.c.id.in_(job_ids), _J.c.state == "running", _J.c.locked_by == worker_id)
        .values(state="done", finished_at=now, locked_by=None, locked_until=None)
        .returning(_J.c.id)
    ).scalars()
    return set(rows)


def release(session: Session, job_ids: list[int], worker_id: str) -> None:
    """Gives claimed, unstarted jobs back without counting the attempt."""
    if job_ids:
        session.execute(
            update(_J)
            .where(_J.c.id.in_(job_ids), _J.c.state == "running", _J.c.locked_by == worker_id)
            .values(state="queued", locked_by=None, locked_until=None, attempts=_J.c.attempts - 1)
        )
        wakeup.request(session, "jobs")


def fail(
    session: Session,
    job: Job,
    worker_id: str,
    now: datetime,
    error: str,
    *,
    retry_after: float | None,
) -> str:
    """Records a failed attempt: queued again after ``retry_after`` seconds, or ``dead`` when
    attempts are used up or ``retry_after`` is None. Returns the new state ("" if lost)."""
    dead = retry_after is None or job.attempts >= job.max_attempts
    values: dict[str, Any] = {"last_error": error[:MAX_ERROR], "locked_by": None, "locked_until": None}
    if dead:
        values.update(state="dead", finished_at=now)
    else:
        values.update(state="queued", run_at=now + timedelta(seconds=retry_after or 0))
    result = session.execute(
        update(_J)
        .where(_J.c.id == job.id, _J.c.state == "running", _J.c.locked_by == worker_id)
        .values(**values)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return ""
    if not dead:
        wakeup.request(session, "jobs")
    return str(values["state"])


def reap(session: Session, now: datetime) -> int:
    """Jobs whose worker went silent past the lease: queued again, or dead if out of attempts."""
    expired = (_J.c.state == "running", _J.c.locked_until < now)
    dead = session.execute(
        update(_J)
        .where(*expired, _J.c.attempts >= _J.c.max_attempts)
        .values(
            state="dead",
            finished_at=now,
            locked_by=None,
            locked_until=None,
            last_error="worker lost: its lease expired on the last attempt",
        )
    ).rowcount  # type: ignore[attr-defined]
    requeued = session.execute(
        update(_J)
        .where(*expired)
        .values(
            state="queued",
            run_at=None,
            locked_by=None,
            locked_until=None,
            last_error="worker lost: its lease expired; retrying",
        )
    ).rowcount  # type: ignore[attr-defined]
    if requeued:
        wakeup.request(session, "jobs")
    return int(dead) + int(requeued)


def extend_leases(
    session: Session, worker_id: str, job_ids: list[int], now: datetime, lease_seconds: float
) -> None:
    if not job_ids:
        return
    session.execute(
        update(_J)
        .where(_J.c.id.in_(job_ids), _J.c.state == "running", _J.c.locked_by == worker_id)
        .values(locked_until=now + timedelta(seconds=lease_seconds))
    )


def retry_now(session: Session, job_id: int) -> Job | None:
    """Puts a dead (or done) job back in the queue with fresh attempts.

    Raises :class:`Conflict` (``job_duplicate_active``) when a queued or running job holds the
    same ``dedupe_key``: that job does the same work, and two may not be active at once."""
    try:
        with session.begin_nested():  # the unique index decides, also against a concurrent enqueue
            session.execute(
                update(_J)
                .where(_J.c.id == job_id, _J.c.state.in_(("dead", "done")))
                .values(
                    state="queued",
                    run_at=None,
                    attempts=0,
                    finished_at=None,
                    locked_by=None,
                    locked_until=None,
                )
            )
    except IntegrityError:
        job = session.get(Job, job_id)
        key = job.dedupe_key if job else None
        holder = session.execute(
            select(_J.c.id, _J.c.state).where(_J.c.dedupe_key == key, _J.c.state.in_(ACTIVE))
        ).first()
        active = f"job {holder.id} ({holder.state})" if holder else "another queued or running job"
        raise Conflict(
            f"job {job_id} cannot run again now: {active} holds its dedupe key {key!r}; "
            "retry it after that job finishes",
            code="job_duplicate_active",
            details={"dedupe_key": key, "active_job_id": str(holder.id) if holder else None},
        ) from None
    wakeup.request(session, "jobs")
    return session.get(Job, job_id)


def prune(session: Session, *, done_before: datetime, dead_before: datetime, batch: int = 1000) -> int:
    """Deletes one batch of finished jobs past their retention; call until it returns 0."""
    victims = (
        select(_J.c.id)
        .where(
            or_(
                (_J.c.state == "done") & (_J.c.finished_at < done_before),
                (_J.c.state == "dead") & (_J.c.finished_at < dead_before),
            )
        )
        .limit(batch)
    )
    return int(session.execute(delete(_J).where(_J.c.id.in_(victims.scalar_subquery()))).rowcount)  # type: ignore[attr-defined]
