"""Retention: the periodic jobs prune events, finished jobs and webhook deliveries (with their
attempts) past their retention, and keep everything else; they delete in bounded batches, each
its own short transaction, that lock rows, never tables: inserts into the same tables go on
while a batch is open.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, insert, select, text
from sqlalchemy.engine import Connection

from max_server.db import Database
from max_server.jobs import queue, registry, scheduler
from max_server.jobs.worker import Worker
from max_server.models import Event, Job, WebhookAttempt, WebhookDelivery, WebhookSubscription
from max_server.services import events, webhook_delivery
from max_server.settings import Settings

PRUNE_TASKS = ("events.prune", "jobs.prune", "webhooks.prune")
PRUNED_TABLES = ("events", "jobs", "webhook_deliveries", "webhook_attempts")


def now() -> datetime:
    return datetime.now(UTC)


def fill(db: Database, old: int) -> dict[str, int]:
    """``old`` rows past retention in each table, beside rows that must stay."""
    long_ago, recently = now() - timedelta(days=40), now() - timedelta(hours=1)
    finished_ago = now() - timedelta(days=10)
    with db.engine.begin() as connection:
        subscription = connection.execute(
            insert(WebhookSubscription.__table__)  # type: ignore[attr-defined]
            .values(url="https://hooks.example.test/in", events=["*"], secret="whsec_x", created_at=long_ago)
            .returning(WebhookSubscription.__table__.c.id)  # type: ignore[attr-defined]
        ).scalar_one()
        rows = [
            {"seq": n + 1, "type": "t", "data": {}, "audience": {}, "created_at": long_ago}
            for n in range(old)
        ]
        rows += [
            {"seq": old + n + 1, "type": "t", "data": {}, "audience": {}, "created_at": recently}
            for n in range(5)
        ]
        connection.execute(insert(Event.__table__), rows)  # type: ignore[attr-defined]
        job = {"kind": "k", "payload": {}, "attempts": 1, "max_attempts": 5, "created_at": long_ago}
        job |= {"finished_at": None, "locked_by": None, "run_at": None}  # every row names the same columns
        jobs = [{**job, "state": "done", "finished_at": finished_ago} for _ in range(old)]
        jobs += [{**job, "state": "dead", "finished_at": long_ago} for _ in range(10)]
        jobs += [{**job, "state": "dead", "finished_at": finished_ago}]  # dead ones are kept 4× longer
        jobs += [{**job, "state": "done", "finished_at": recently}]
        later = now() + timedelta(days=1)  # not due: the worker below leaves it alone
        jobs += [{**job, "state": "queued", "run_at": later}, {**job, "state": "running", "locked_by": "w"}]
        connection.execute(insert(Job.__table__), jobs)  # type: ignore[attr-defined]
        delivery = {"subscription_id": subscription, "event_type": "t", "body": "{}", "created_at": long_ago}
        deliveries = [
            {**delivery, "event_id": n + 1, "message_id": f"msg_{n}", "state": "succeeded"}
            for n in range(old)
        ]
        deliveries += [{**delivery, "event_id": old + 1, "message_id": "msg_pending", "state": "pending"}]
        deliveries += [
            {
                **delivery,
                "event_id": old + 2,
                "message_id": "msg_new",
                "state": "failed",
                "created_at": recently,
            }
        ]
        connection.execute(insert(WebhookDelivery.__table__), deliveries)  # type: ignore[attr-defined]
        ids = connection.execute(select(WebhookDelivery.id)).scalars().all()  # type: ignore[call-overload]
        attempts = [
            {"delivery_id": d, "attempt": a, "status_code": 200, "created_at": long_ago}
            for d in ids
            for a in (1, 2)
        ]
        connection.execute(insert(WebhookAttempt.__table__), attempts)  # type: ignore[attr-defined]
    return counts(db)


def counts(db: Database) -> dict[str, int]:
    with db.engine.connect() as connection:
        return {t: connection.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in PRUNED_TABLES}


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn: Connection, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def run_prune_jobs(db: Database, settings: Settings) -> None:
    """What the scheduler does on the hour: enqueue each task's tick; a worker runs them."""
    registry.load_builtin_handlers()
    tasks = {t.name: t for t in registry.periodic_tasks()}
    with db.session() as session:
        for name in PRUNE_TASKS:
            assert scheduler.fire(session, tasks[name]) is not None, name
        session.commit()
    Worker(db, settings, concurrency=1, name="pruner").drain()
    with db.session(write=False) as session:
        states = session.execute(
            select(Job.__table__.c.kind, Job.__table__.c.state).where(  # type: ignore[attr-defined]
                Job.__table__.c.kind.in_(PRUNE_TASKS)  # type: ignore[attr-defined]
            )
        ).all()
    assert sorted(states) == [(name, "done") for name in sorted(PRUNE_TASKS)]


def test_the_periodic_jobs_prune_what_is_past_retention(db: Database, settings: Settings) -> None:
    old = 1200
    before = fill(db, old)
    with statements(db) as seen:
        run_prune_jobs(db, settings)
    after = counts(db)
    assert after == {
        "events": 5,  # the recent ones (the newest is always kept, so seq never restarts)
        "jobs": 4 + len(PRUNE_TASKS),  # queued, running, a young dead one, a recent done one; the prune jobs
        "webhook_deliveries": 2,  # the pending one and the recent one
        "webhook_attempts": 4,
    }, before
    with db.session(write=False) as session:
        kept = session.execute(select(Job.state, func.count()).group_by(Job.state)).all()  # type: ignore[call-overload]
    assert dict(kept) == {"queued": 1, "running": 1, "dead": 1, "done": 1 + len(PRUNE_TASKS)}
    deletes = [s for s in seen if s.lstrip().upper().startswith("DELETE")]
    for statement in deletes:
        assert re.search(r"\bLIMIT\b", statement, re.I) or re.search(r"\bIN\s*\(", statement, re.I), statement
    # Batches: 1,000 jobs and 5,000 events or deliveries at a time.
    assert sum("DELETE FROM jobs" in s for s in deletes) >= old // 1000 + 1


@pytest.mark.postgres_only
def test_a_prune_batch_locks_rows_not_tables(postgres_db: Database) -> None:
    """A prune batch is held open (as if slow); meanwhile another connection writes to the same
    tables with a 2 s lock timeout. Nothing waits, and the batch holds no table lock."""
    db = postgres_db
    with db.engine.begin() as connection:  # 20,000 old events, fast
        connection.execute(
            text(
                "INSERT INTO events (seq, type, data, audience, created_at) "
                "SELECT n, 't', '{}', '{}', now() - interval '40 days' FROM generate_series(100001, 120000) n"
            )
        )
    fill(db, 3000)
    cutoff = now() - timedelta(days=30)
    batches = {
        "events": lambda s: events.prune(s, cutoff),
        "jobs": lambda s: queue.prune(s, done_before=now() - timedelta(days=7), dead_before=cutoff),
        "webhook_deliveries": lambda s: webhook_delivery.prune(s, cutoff),
    }
    for table, prune in batches.items():
        session = db.session()
        try:
            deleted = prune(session)  # one batch, not committed yet: its locks are held
            assert 0 < deleted <= 5000, (table, deleted)
            pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
            modes = held_table_locks(db, pid)
            assert modes <= {"AccessShareLock", "RowShareLock", "RowExclusiveLock"}, (table, modes)
            took = write_meanwhile(db)
            assert took < 2.0, (table, took)
        finally:
            session.rollback()
            session.close()


def held_table_locks(db: Database, pid: int) -> set[str]:
    with db.engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT l.mode FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "WHERE l.pid = :pid AND c.relname = ANY(:tables)"
            ),
            {"pid": pid, "tables": list(PRUNED_TABLES)},
        ).scalars()
        return set(rows)


def write_meanwhile(db: Database) -> float:
    """Inserts an event, a job and a delivery attempt, claims a job and sequences events, from
    another connection that refuses to wait more than 2 s for any lock."""
    started = time.monotonic()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            with db.session() as session:
                session.execute(text("SET LOCAL lock_timeout = '2s'"))
                events.emit(session, "t.new", {}, to=events.audience(everyone=True))
                queue.enqueue(session, "k.new", {})
                delivery = session.execute(select(func.max(WebhookDelivery.id))).scalar_one()
                session.execute(
                    insert(WebhookAttempt.__table__).values(  # type: ignore[attr-defined]
                        delivery_id=delivery, attempt=9, status_code=200, created_at=now()
                    )
                )
                session.commit()
            with db.session() as session:
                session.execute(text("SET LOCAL lock_timeout = '2s'"))
                assert queue.claim(session, "meanwhile", queue.db_now(session), 30)
                events.sequence_pending(session)
                session.commit()
        except BaseException as exc:  # reported to the test below
            errors.append(exc)

    thread = threading.Thread(target=write)
    thread.start()
    thread.join(10)
    assert not thread.is_alive() and not errors, errors
    return time.monotonic() - started
