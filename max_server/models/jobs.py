"""The durable job queue, periodic ticks, and the event outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Index, PrimaryKeyConstraint, text
from sqlmodel import Field, SQLModel

from max_server.models.base import BigId, created_at_field, id_field, json_field, time_field

JOB_STATES = ("queued", "running", "done", "dead")


class Job(SQLModel, table=True):
    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint("state IN ('queued', 'running', 'done', 'dead')", name="state"),
        # A dedupe key is unique only among jobs that are still to run.
        Index(
            "uq_jobs_dedupe_key_active",
            "dedupe_key",
            unique=True,
            postgresql_where=text("state IN ('queued', 'running')"),
            sqlite_where=text("state IN ('queued', 'running')"),
        ),
        # The claim query: queued jobs by due time (a job without run_at is due since created).
        Index(
            "ix_jobs_queued_due",
            text("coalesce(run_at, created_at)"),
            "id",
            postgresql_where=text("state = 'queued'"),
            sqlite_where=text("state = 'queued'"),
        ),
        # Lease expiry.
        Index(
            "ix_jobs_running_locked_until",
            "locked_until",
            postgresql_where=text("state = 'running'"),
            sqlite_where=text("state = 'running'"),
        ),
        # Jobs that must run one after another (e.g. sends of one conversation).
        Index(
            "ix_jobs_ordering_key_active",
            "ordering_key",
            "id",
            postgresql_where=text("state IN ('queued', 'running') AND ordering_key IS NOT NULL"),
            sqlite_where=text("state IN ('queued', 'running') AND ordering_key IS NOT NULL"),
        ),
        Index("ix_jobs_state_kind", "state", "kind"),
        Index("ix_jobs_finished_at", "finished_at"),
    )

    id: int | None = id_field()
    kind: str = Field(max_length=64)
    payload: dict[str, Any] = json_field(dict)
    state: str = Field(default="queued", max_length=16)
    # NULL means "as soon as possible" (whatever the clock of the worker that looks).
    run_at: datetime | None = time_field()
    attempts: int = Field(default=0)
    max_attempts: int = Field(default=5)
    locked_by: str | None = Field(default=None, max_length=128)
    locked_until: datetime | None = time_field()
    last_error: str | None = Field(default=None)
    dedupe_key: str | None = Field(default=None, max_length=200)
    ordering_key: str | None = Field(default=None, max_length=200)
    created_at: datetime = created_at_field()
    started_at: datetime | None = time_field()
    finished_at: datetime | None = time_field()


class PeriodicTick(SQLModel, table=True):
    """One row per (task, tick): whoever inserts it enqueues that tick's job, once per cluster."""

    __tablename__ = "periodic_ticks"
    __table_args__ = (PrimaryKeyConstraint("task", "tick"),)

    task: str = Field(max_length=64)
    tick: int = Field(sa_type=BigId)
    job_id: int | None = Field(default=None, sa_type=BigId)
    created_at: datetime = created_at_field()


class Event(SQLModel, table=True):
    """The outbox. ``seq`` stays NULL until the sequencer numbers committed events gap-free."""

    __tablename__ = "events"
    __table_args__ = (
        Index("uq_events_seq", "seq", unique=True),
        Index(
            "ix_events_unsequenced",
            "id",
            postgresql_where=text("seq IS NULL"),
            sqlite_where=text("seq IS NULL"),
        ),
        Index("ix_events_created_at", "created_at"),
    )

    id: int | None = id_field()
    seq: int | None = Field(default=None, sa_type=BigId)
    type: str = Field(max_length=64)
    data: dict[str, Any] = json_field(dict)
    # Who may receive it: {"teams": [...], "users": [...], "all": bool}; admins always may,
    # except when "private" is set (a person's notifications): then only the listed users.
    audience: dict[str, Any] = json_field(dict)
    created_at: datetime = created_at_field()
