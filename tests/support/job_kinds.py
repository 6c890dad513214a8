"""Job kinds used only by tests. Each records what it did as an audit entry, a real table."""

from __future__ import annotations

import time
from typing import Any

from sqlmodel import func, select

from max_server.access import Actor
from max_server.db import Database
from max_server.jobs.registry import JobContext, PermanentFailure, RetryPolicy, handler, periodic
from max_server.models import AuditEntry
from max_server.services import audit

TESTER = Actor.system("job-tests")


def record(db: Database, action: str, key: str, **data: Any) -> None:
    with db.session() as session:
        audit.record(session, TESTER, action, "test", key, data)
        session.commit()


def count(db: Database, action: str, key: str | None = None) -> int:
    with db.session(write=False) as session:
        query = select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action)
        if key is not None:
            query = query.where(AuditEntry.target_id == key)
        return int(session.exec(query).one())


def keys(db: Database, action: str) -> list[str]:
    with db.session(write=False) as session:
        return [
            k
            for k in session.exec(
                select(AuditEntry.target_id).where(AuditEntry.action == action).order_by(AuditEntry.id)
            )
            if k
        ]


@handler("test.record", RetryPolicy(max_attempts=3, base_delay=1))
def _record(ctx: JobContext, payload: dict[str, Any]) -> None:
    record(ctx.db, "test.record", str(payload["key"]), attempt=ctx.attempt)


@handler("test.flaky", RetryPolicy(max_attempts=4, base_delay=10, max_delay=60))
def _flaky(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Fails ``fail_times`` times, then succeeds."""
    key = str(payload["key"])
    record(ctx.db, "test.attempt", key)
    if count(ctx.db, "test.attempt", key) <= int(payload["fail_times"]):
        raise ConnectionError(f"receiver down (attempt {ctx.attempt})")
    record(ctx.db, "test.finished", key)


@handler("test.permanent")
def _permanent(ctx: JobContext, payload: dict[str, Any]) -> None:
    raise PermanentFailure("the recipient does not exist")


@handler("test.slow", RetryPolicy(max_attempts=5, base_delay=1))
def _slow(ctx: JobContext, payload: dict[str, Any]) -> None:
    key = str(payload["key"])
    record(ctx.db, "test.started", key, worker=ctx.worker_id)
    time.sleep(float(payload.get("seconds", 3)))
    record(ctx.db, "test.finished", key, worker=ctx.worker_id)


@handler("test.tick", RetryPolicy(max_attempts=5, base_delay=1))
def _tick(ctx: JobContext, payload: dict[str, Any]) -> None:
    tick = str(payload["tick"])
    record(ctx.db, "test.tick_started", tick, worker=ctx.worker_id)
    slow_ticks = payload.get("slow_ticks_every")
    if slow_ticks and int(tick) % int(slow_ticks) == 0:
        time.sleep(4)
    record(ctx.db, "test.tick", tick, worker=ctx.worker_id)


def register_tick(interval: int = 1, slow_ticks_every: int | None = None) -> None:
    periodic(
        "test.tick", interval, payload={"slow_ticks_every": slow_ticks_every} if slow_ticks_every else {}
    )
