"""Retention: the daily ``media.cleanup`` job and ``POST /api/v1/media/cleanup`` delete files past
``media.retention_days``, keep their rows ``expired``, and survive a file that cannot be deleted;
``media.delete`` deletes by key for erasure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select

from max_server.clock import FrozenClock
from max_server.db import Database
from max_server.jobs import queue, registry
from max_server.jobs.worker import Worker
from max_server.models import Job
from max_server.settings import Settings
from tests.conftest import People, bearer
from tests.media.conftest import Customer, MediaRow, blob, link_for
from tests.support.live import LiveServer


def object_exists(settings: Settings, s3: Any, key: str) -> bool:
    if settings.storage.backend == "s3":
        listed = s3.list_objects_v2(Bucket=settings.storage.bucket, Prefix=key)
        return any(o["Key"] == key for o in listed.get("Contents", []))
    return (Path(settings.storage.path) / key).is_file()


def run_job(db: Database, worker: Worker, kind: str, payload: dict[str, Any] | None = None) -> Job:
    with db.session() as session:
        job_id = queue.enqueue(session, kind, payload or {})
        session.commit()
    worker.drain()
    with db.session(write=False) as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


@pytest.mark.parametrize("storage_backend", ["local", "s3"])
def test_the_daily_cleanup_removes_files_past_retention_and_keeps_expired_rows(
    customer: Customer,
    worker: Worker,
    people: People,
    live: LiveServer,
    db: Database,
    settings: Settings,
    s3: Any,
    clock: FrozenClock,
    row: MediaRow,
) -> None:
    _, admin = people.user("admin")
    old = [customer.sends(blob(4000, f"old{i}"), "image/jpeg")[0] for i in range(3)]
    worker.drain()
    clock.advance(days=3)
    recent, _ = customer.sends(blob(4000, "recent"), "application/pdf", filename="r.pdf")
    worker.drain()
    keys = {i: row(i).storage_key for i in [*old, recent]}
    assert all(object_exists(settings, s3, k) for k in keys.values())  # type: ignore[arg-type]
    clock.advance(days=4, seconds=1)  # the first three are now 7 days and 1 second old

    job = run_job(db, worker, "media.cleanup")
    assert job.state == "done", job.last_error
    for media_id in old:
        gone = row(media_id)
        assert (gone.status, gone.reason) == ("expired", "retention")
        assert gone.storage_key == keys[media_id]  # the row keeps what it was
        assert not object_exists(settings, s3, keys[media_id])  # type: ignore[arg-type]
        answer = link_for(live, admin, media_id)
        assert answer.status_code == 410
        error = answer.json()["error"]
        assert error["code"] == "media_expired"
        assert "kept 7 days" in error["message"] and "send it again" in error["message"]
        assert error["details"]["status"] == "expired"
    assert row(recent).status == "stored"
    assert object_exists(settings, s3, keys[recent])  # type: ignore[arg-type]
    assert link_for(live, admin, recent).status_code == 200
    conversation_id = row(old[0]).conversation_id
    messages = httpx.get(
        f"{live.url}/api/v1/conversations/{conversation_id}/messages", headers=bearer(admin)
    ).json()["messages"]
    lines = [m["media"][0] for m in messages if m["media"]]
    assert [line["status"] for line in lines] == ["expired", "expired", "expired", "stored"]
    assert lines[0]["reason"] == "retention"


def test_a_stored_file_past_retention_reads_as_expired_before_the_sweep(
    customer: Customer, worker: Worker, people: People, live: LiveServer, clock: FrozenClock
) -> None:
    _, admin = people.user("admin")
    ours, _ = customer.sends(blob(1000, "e"), "image/jpeg")
    worker.drain()
    clock.advance(days=7)
    assert link_for(live, admin, ours).json()["error"]["code"] == "media_expired"


def test_one_file_that_cannot_be_deleted_does_not_stop_the_sweep(
    customer: Customer, worker: Worker, db: Database, settings: Settings, clock: FrozenClock, row: MediaRow
) -> None:
    ids = [customer.sends(blob(1000, f"s{i}"), "image/jpeg")[0] for i in range(3)]
    worker.drain()
    stuck = row(ids[1]).storage_key
    assert stuck is not None
    path = Path(settings.storage.path) / stuck
    path.unlink()
    path.mkdir()  # a non-empty directory where the file was: unlink fails
    (path / "blocker").write_text("x")
    clock.advance(days=8)
    job = run_job(db, worker, "media.cleanup")
    assert job.state == "done"
    assert [row(i).status for i in ids] == ["expired", "stored", "expired"]
    (path / "blocker").unlink()
    path.rmdir()
    run_job(db, worker, "media.cleanup")  # the next sweep gets it
    assert row(ids[1]).status == "expired"


def test_cleanup_through_the_api_in_batches_with_a_dry_run_first(
    customer: Customer,
    worker: Worker,
    people: People,
    live: LiveServer,
    settings: Settings,
    clock: FrozenClock,
    row: MediaRow,
) -> None:
    _, admin = people.user("admin")
    _, supervisor = people.user("supervisor")
    ids = [customer.sends(blob(1000 + i, f"b{i}"), "image/jpeg")[0] for i in range(5)]
    worker.drain()
    clock.advance(days=7, seconds=1)
    url = f"{live.url}/api/v1/media/cleanup"
    assert httpx.post(url, headers=bearer(supervisor)).status_code == 403
    dry = httpx.post(url, params={"dry_run": "true"}, headers=bearer(admin)).json()
    assert (dry["dry_run"], dry["due"], dry["due_bytes"], dry["expired"]) == (True, 5, 5010, 0)
    assert {row(i).status for i in ids} == {"stored"}
    seen, cursor, calls = 0, None, 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        step = httpx.post(url, params=params, headers=bearer(admin)).json()
        calls += 1
        if calls == 1:
            assert step["due"] == 5
        seen += step["expired"]
        cursor = step["next_cursor"]
        if not cursor:
            break
    assert (seen, calls) == (5, 3)
    assert {row(i).status for i in ids} == {"expired"}
    again = httpx.post(url, headers=bearer(admin)).json()
    assert (again["due"], again["expired"], again["next_cursor"]) == (0, 0, None)


def test_cleanup_is_a_daily_periodic_task() -> None:
    registry.load_builtin_handlers()
    tasks = {t.name: t for t in registry.periodic_tasks()}
    assert tasks["media.cleanup"].interval == 86400
    assert tasks["media.cleanup"].kind == "media.cleanup"


@pytest.mark.parametrize("storage_backend", ["local", "s3"])
def test_media_delete_removes_objects_by_key_idempotently(
    customer: Customer, worker: Worker, db: Database, settings: Settings, s3: Any, row: MediaRow
) -> None:
    ids = [customer.sends(blob(1000, f"d{i}"), "image/jpeg")[0] for i in range(2)]
    worker.drain()
    keys = [row(i).storage_key for i in ids]
    payload = {"storage_keys": [*keys, "media/1/1/never-stored.jpg"]}
    assert run_job(db, worker, "media.delete", payload).state == "done"
    assert not any(object_exists(settings, s3, k) for k in keys)  # type: ignore[arg-type]
    assert run_job(db, worker, "media.delete", payload).state == "done"  # again: still fine
    bad = run_job(db, worker, "media.delete", {"storage_keys": ["../../etc/passwd"]})
    assert bad.state == "dead"
    assert "invalid storage key" in (bad.last_error or "")
    with db.session(write=False) as session:
        assert session.exec(select(Job).where(Job.kind == "media.delete", Job.state == "queued")).all() == []
