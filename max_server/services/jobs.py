"""Operators' view of the job queue: list, inspect, and retry dead jobs."""

from __future__ import annotations

from sqlmodel import Session, col, select

from max_server.access import Actor
from max_server.errors import Conflict, not_found
from max_server.jobs import queue
from max_server.models import Job
from max_server.services import audit
from max_server.services.pagination import clamp_limit


def list_jobs(
    session: Session,
    *,
    state: str | None = None,
    kind: str | None = None,
    before_id: int | None = None,
    limit: int | None = None,
) -> tuple[list[Job], int | None]:
    size = clamp_limit(limit)
    query = select(Job)
    if state:
        query = query.where(Job.state == state)
    if kind:
        query = query.where(Job.kind == kind)
    if before_id is not None:
        query = query.where(col(Job.id) < before_id)
    rows = list(session.exec(query.order_by(col(Job.id).desc()).limit(size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    return rows, (rows[-1].id if more and rows else None)


def get_job(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise not_found("job", job_id)
    return job


def retry(session: Session, actor: Actor, job_id: int) -> Job:
    """Queues a dead or done job again. 409 ``job_not_finished`` while it is still queued or
    running; 409 ``job_duplicate_active`` (from :func:`queue.retry_now`, naming the job in the
    way) while another active job holds its dedupe key. Nothing is written when refused."""
    job = get_job(session, job_id)
    if job.state not in ("dead", "done"):
        raise Conflict(
            f"job {job_id} is {job.state}; only dead or done jobs can be retried", code="job_not_finished"
        )
    queue.retry_now(session, job_id)
    audit.record(
        session, actor, "job.retried", "job", job_id, {"kind": job.kind, "previous_state": job.state}
    )
    session.commit()
    session.refresh(job)
    return job
