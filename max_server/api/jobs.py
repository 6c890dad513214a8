"""The job queue, for operators (admins)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from max_server.api.deps import AdminActor, SessionDep
from max_server.schemas import JobList, JobPublic
from max_server.services import jobs
from max_server.services.pagination import cursor_int, encode_cursor

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])


@router.get("", response_model=JobList)
def list_jobs(
    session: SessionDep,
    actor: AdminActor,
    state: Literal["queued", "running", "done", "dead"] | None = None,
    kind: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> JobList:
    """Newest first, filtered by state and kind."""
    rows, next_id = jobs.list_jobs(session, state=state, kind=kind, before_id=cursor_int(cursor), limit=limit)
    return JobList(
        jobs=[JobPublic.model_validate(j) for j in rows],
        next_cursor=encode_cursor(id=next_id) if next_id else None,
    )


@router.get("/{job_id}", response_model=JobPublic)
def read_job(session: SessionDep, actor: AdminActor, job_id: int) -> JobPublic:
    return JobPublic.model_validate(jobs.get_job(session, job_id))


@router.post("/{job_id}/retry", response_model=JobPublic)
def retry_job(session: SessionDep, actor: AdminActor, job_id: int) -> JobPublic:
    """Runs a dead (or done) job again, with fresh attempts. 409 ``job_not_finished`` while it
    is queued or running; 409 ``job_duplicate_active`` while another queued or running job holds
    its dedupe key (that job does the same work)."""
    return JobPublic.model_validate(jobs.retry(session, actor, job_id))
