"""Periodic work: APScheduler fires in every process; each firing inserts the tick's row and its
job in one transaction, so each tick runs once per cluster and survives the crash of whoever ran
it (the job's lease expires and another worker takes it).

The tick number comes from the database clock, so processes with skewed clocks agree on it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select, tuple_, update
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from max_server.db import Database, dialect_insert
from max_server.jobs import queue, registry
from max_server.jobs.registry import PeriodicTask
from max_server.models import PeriodicTick

log = logging.getLogger("max.scheduler")
_T = PeriodicTick.__table__  # type: ignore[attr-defined]


CATCH_UP_TICKS = 2


def fire(session: Session, task: PeriodicTask, now: datetime | None = None) -> int | None:
    """Enqueues ``task``'s job for the current tick unless some process already did; a tick or
    two missed because a trigger ran late are enqueued too. Returns the current tick's job id,
    or None. The caller commits."""
    now = now or queue.db_now(session)
    current = int(now.timestamp()) // task.interval
    last = session.execute(select(func.max(_T.c.tick)).where(_T.c.task == task.name)).scalar()
    first = current if last is None or last >= current else max(last + 1, current - CATCH_UP_TICKS)
    job_id = None
    for tick in range(first, current + 1):
        job_id = _enqueue_tick(session, task, tick, now)
    return job_id


def _enqueue_tick(session: Session, task: PeriodicTask, tick: int, now: datetime) -> int | None:
    inserted = session.execute(
        dialect_insert(session, _T)
        .values(task=task.name, tick=tick, created_at=now)
        .on_conflict_do_nothing(index_elements=["task", "tick"])
        .returning(_T.c.tick)
    ).scalar_one_or_none()
    if inserted is None:
        return None
    job_id = queue.enqueue(
        session,
        task.kind,
        {**task.payload, "tick": tick, "task": task.name},
        dedupe_key=f"{task.name}:{tick}",
    )
    session.execute(update(_T).where(_T.c.task == task.name, _T.c.tick == tick).values(job_id=job_id))
    return job_id


def prune_ticks(session: Session, before: datetime, batch: int = 5000) -> int:
    """Deletes one batch of tick rows older than ``before``; call until it returns 0."""
    victims = select(_T.c.task, _T.c.tick).where(_T.c.created_at < before).limit(batch)
    statement = delete(_T).where(tuple_(_T.c.task, _T.c.tick).in_(victims))
    return int(session.execute(statement).rowcount)  # type: ignore[attr-defined]


class Scheduler:
    """Fires every registered periodic task on its interval in this process."""

    def __init__(self, db: Database, tasks: list[PeriodicTask] | None = None) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        self.db = db
        self.tasks = tasks if tasks is not None else registry.periodic_tasks()
        self._scheduler = BackgroundScheduler(
            timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30}
        )

    def start(self) -> None:
        from apscheduler.triggers.interval import IntervalTrigger

        now = datetime.now(UTC)
        for task in self.tasks:
            # Fire just after each tick boundary; every process computes the same boundaries.
            boundary = (int(now.timestamp()) // task.interval + 1) * task.interval
            start = datetime.fromtimestamp(boundary, UTC) + timedelta(milliseconds=200)
            self._scheduler.add_job(
                self.fire_now,
                IntervalTrigger(seconds=task.interval, start_date=start),
                args=[task],
                id=task.name,
            )
        self._scheduler.start()
        for task in self.tasks:  # a tick missed while nobody ran is caught up at once
            self.fire_now(task)

    def stop(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def fire_now(self, task: PeriodicTask) -> int | None:
        try:
            with self.db.session() as session:
                job_id = fire(session, task)
                session.commit()
            return job_id
        except SQLAlchemyError as exc:
            log.warning("periodic task %s could not be enqueued (%s)", task.name, type(exc).__name__)
            return None
