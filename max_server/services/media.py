"""Media files: their state changes, downloads to schedule, links, and retention.

States: ``pending`` (a ``media.download`` job is on it) → ``stored`` (in storage until
``expires_at``) or ``failed`` (``reason`` says why) → ``expired`` once retention deleted the file.
Links are minted per request (``link``) and never stored (DESIGN §6, §10 item 1). What a
download may accept (sizes, MIME types, checksums) is in ``storage/rules.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from max_server.access import Actor, can_see
from max_server.db import Database
from max_server.errors import Conflict, Gone, not_found
from max_server.jobs import queue
from max_server.models import ChannelAccount, Conversation, MediaFile
from max_server.schemas import MediaLink, MediaPublic
from max_server.services import audit, conversation_rows, events
from max_server.storage import Storage, content_type, safe_filename
from max_server.storage.base import display_name

DOWNLOAD_KIND = "media.download"


# Wire form ------------------------------------------------------------------------------------
def public(row: MediaFile) -> MediaPublic:
    return MediaPublic.model_validate({**row.model_dump(), "retained_until": row.expires_at})


def download_name(row: MediaFile) -> str:
    """The name a download gets: the customer's (cleaned), else the stored key's last part."""
    return display_name(row.filename) or (row.storage_key or "").rsplit("/", 1)[-1] or "download"


# Downloads ------------------------------------------------------------------------------------
def schedule_downloads(session: Session, message_id: int, *, held: bool, now: datetime) -> list[int]:
    """Queues a ``media.download`` job per pending media row of a new message, inside the
    caller's transaction. Media of a message ``held`` by the rate limit is not fetched: it is
    marked failed with that reason, so the agent sees why."""
    rows = list(
        session.exec(
            select(MediaFile)
            .where(MediaFile.message_id == message_id, MediaFile.status == "pending")
            .order_by(col(MediaFile.id))
        )
    )
    queued = []
    for row in rows:
        assert row.id is not None
        if held:
            _fail(session, row, "not downloaded: the customer was over the rate limit", now)
            continue
        queue.enqueue(session, DOWNLOAD_KIND, {"media_id": row.id}, dedupe_key=f"{DOWNLOAD_KIND}:{row.id}")
        queued.append(row.id)
    return queued


@dataclass(frozen=True)
class DownloadPlan:
    """What a download needs to know, read in one short transaction."""

    media_id: int
    media_type: str
    channel_media_id: str | None
    source_url: str | None
    mime_type: str | None
    filename: str | None
    expected_sha256: str | None
    phone_number_id: str | None
    conversation_id: int
    message_id: int
    suffix: bool = False  # another file of the message would get the same name

    def storage_key(self, mime_type: str | None) -> str:
        """``media/{conversation}/{message}/{safe name}``, unique among the message's files."""
        name = safe_filename(self.filename, self.media_type, mime_type or self.mime_type)
        if self.suffix:
            stem, dot, ext = name.rpartition(".")
            name = f"{stem}-{self.media_id}.{ext}" if dot and stem else f"{name}-{self.media_id}"
        return f"media/{self.conversation_id}/{self.message_id}/{name}"


def download_plan(session: Session, media_id: int) -> DownloadPlan | None:
    """The plan for a pending media row; None when it is gone or no longer pending."""
    row = session.get(MediaFile, media_id)
    if row is None or row.status != "pending":
        return None
    phone_number_id = session.exec(
        select(ChannelAccount.external_id)
        .join(Conversation, col(Conversation.channel_account_id) == col(ChannelAccount.id))
        .where(Conversation.id == row.conversation_id, ChannelAccount.kind == "whatsapp")
    ).first()
    # Names are derived from the rows alone, so two files of one message downloading at the same
    # time agree on who keeps the plain name (the first) without seeing each other's results.
    earlier = session.exec(
        select(MediaFile).where(MediaFile.message_id == row.message_id, col(MediaFile.id) < media_id)
    ).all()
    name = safe_filename(row.filename, row.media_type, row.mime_type)
    suffix = any(
        safe_filename(e.filename, e.media_type, e.mime_type) == name or (not row.filename and not e.filename)
        for e in earlier
    )
    return DownloadPlan(
        media_id=media_id,
        media_type=row.media_type,
        channel_media_id=row.channel_media_id,
        source_url=row.source_url,
        mime_type=row.mime_type,
        filename=row.filename,
        expected_sha256=row.expected_sha256,
        phone_number_id=phone_number_id,
        conversation_id=row.conversation_id,
        message_id=row.message_id,
        suffix=suffix,
    )


def mark_stored(
    session: Session,
    media_id: int,
    *,
    storage_key: str,
    size: int,
    sha256: str,
    mime_type: str | None,
    retention_days: int,
    now: datetime,
) -> MediaFile | None:
    """Records a stored file and emits ``media.stored``; None if the row is no longer pending."""
    row = _pending(session, media_id)
    if row is None:
        return None
    row.status, row.reason = "stored", None
    row.storage_key, row.size, row.sha256 = storage_key, size, sha256
    row.mime_type = mime_type or row.mime_type
    row.stored_at, row.expires_at = now, now + timedelta(days=retention_days)
    session.add(row)
    _emit(session, "media.stored", row)
    session.commit()
    return row


def mark_failed(session: Session, media_id: int, reason: str, now: datetime) -> MediaFile | None:
    """Gives up on a pending download, with the reason agents will see; emits ``media.failed``."""
    row = _pending(session, media_id)
    if row is None:
        return None
    _fail(session, row, reason, now)
    session.commit()
    return row


def storage_key_of(session: Session, media_id: int) -> str | None:
    return session.exec(select(MediaFile.storage_key).where(MediaFile.id == media_id)).first()


def note_retry(session: Session, media_id: int, reason: str) -> None:
    """Shows why a pending download is being retried (the row stays ``pending``)."""
    session.execute(
        update(MediaFile)
        .where(col(MediaFile.id) == media_id, col(MediaFile.status) == "pending")
        .values(reason=reason[:1000])
    )
    session.commit()


def _pending(session: Session, media_id: int) -> MediaFile | None:
    row = session.exec(select(MediaFile).where(MediaFile.id == media_id).with_for_update()).first()
    return row if row is not None and row.status == "pending" else None


def _fail(session: Session, row: MediaFile, reason: str, now: datetime) -> None:
    row.status, row.reason = "failed", reason[:1000]
    session.add(row)
    _emit(session, "media.failed", row)


def _emit(session: Session, type_: str, row: MediaFile) -> None:
    session.flush()
    conversation = session.get(Conversation, row.conversation_id)
    assert conversation is not None
    events.emit(session, type_, public(row), to=conversation_rows.audience(conversation))


# Reading and links ----------------------------------------------------------------------------
def get_visible(session: Session, actor: Actor, media_id: int) -> MediaFile:
    """The media row, or 404 when it does not exist or its conversation is hidden from ``actor``."""
    row = session.get(MediaFile, media_id)
    conversation = session.get(Conversation, row.conversation_id) if row is not None else None
    if (
        row is None
        or conversation is None
        or not can_see(actor, conversation.team_id, conversation.assignee_id)
    ):
        raise not_found("media", media_id)
    return row


def link(
    session: Session,
    actor: Actor,
    media_id: int,
    storage: Storage,
    *,
    ttl_s: int,
    retention_days: int,
    now: datetime,
) -> MediaLink:
    """Metadata plus a link valid for ``min(ttl_s, remaining retention)``; 410 once expired,
    409 while pending or after a failure (the error's details carry the metadata)."""
    row = get_visible(session, actor, media_id)
    meta = public(row)
    details = meta.model_dump(mode="json")
    if row.status == "expired" or (row.status == "stored" and row.expires_at and row.expires_at <= now):
        when = f" on {row.expires_at:%Y-%m-%d}" if row.expires_at else ""
        raise Gone(
            f"media {media_id} has expired: files are kept {retention_days} days and this one was "
            f"deleted{when}. Ask the customer to send it again.",
            code="media_expired",
            details=details,
        )
    if row.status == "pending":
        last = f" (last try: {row.reason})" if row.reason else ""
        raise Conflict(
            f"media {media_id} is still being downloaded{last}", code="media_pending", details=details
        )
    if row.status == "failed" or not row.storage_key:
        raise Conflict(
            f"media {media_id} could not be stored: {row.reason or 'unknown reason'}",
            code="media_failed",
            details=details,
        )
    remaining = int((row.expires_at - now).total_seconds()) if row.expires_at else ttl_s
    seconds = max(1, min(ttl_s, remaining))
    url = storage.signed_url(row.storage_key, seconds, download_name(row), content_type(row.mime_type))
    return MediaLink.model_validate({**details, "url": url, "expires_at": now + timedelta(seconds=seconds)})


# Retention ------------------------------------------------------------------------------------
@dataclass
class Sweep:
    due: int = 0
    due_bytes: int = 0
    expired: int = 0
    bytes_freed: int = 0
    errors: list[tuple[int, str | None, str]] = field(default_factory=list)  # (id, key, error)
    last_id: int | None = None
    more: bool = False


def _due(now: datetime) -> list[Any]:
    return [col(MediaFile.status) == "stored", col(MediaFile.expires_at) <= now]


def due_totals(session: Session, now: datetime, after_id: int = 0) -> tuple[int, int]:
    """How many stored files are past retention (after ``after_id``), and their bytes."""
    count, size = session.execute(
        select(func.count(), func.coalesce(func.sum(MediaFile.size), 0)).where(
            *_due(now), col(MediaFile.id) > after_id
        )
    ).one()
    return int(count), int(size)


def mark_expired(session: Session, ids: list[int], now: datetime, actor: Actor | None = None) -> int:
    """Marks rows whose files are gone ``expired`` (reason ``retention``), in one statement."""
    if not ids:
        return 0
    result = session.execute(
        update(MediaFile)
        .where(col(MediaFile.id).in_(ids), *_due(now))
        .values(status="expired", reason="retention")
    )
    count = int(result.rowcount)  # type: ignore[attr-defined]
    if actor is not None and count:
        audit.record(session, actor, "media.cleanup", "media", data={"expired": count, "ids": ids[:50]})
    session.commit()
    return count


def sweep_batch(
    db: Database,
    storage: Storage,
    now: datetime,
    *,
    after_id: int = 0,
    limit: int = 500,
    actor: Actor | None = None,
) -> Sweep:
    """Deletes one batch of files past retention and marks their rows ``expired``.

    The rows are read first, the files deleted with no transaction open (storage may be slow),
    then the rows updated in one short transaction. A file that cannot be deleted keeps its row
    ``stored`` (the next sweep tries again) and is reported; it does not stop the batch.
    """
    result = Sweep()
    with db.session(write=False) as session:
        result.due, result.due_bytes = due_totals(session, now, after_id)
        rows = session.execute(
            select(MediaFile.id, MediaFile.storage_key, MediaFile.size)
            .where(*_due(now), col(MediaFile.id) > after_id)
            .order_by(col(MediaFile.id))
            .limit(limit)
        ).all()
    if not rows:
        return result
    keys = {int(r[0]): r[1] for r in rows}
    failures = storage.delete_many([k for k in keys.values() if k])
    done = []
    for media_id, key in keys.items():
        if key and key in failures:
            result.errors.append((media_id, key, str(failures[key])))
        else:
            done.append(media_id)
    sizes = {int(r[0]): int(r[2] or 0) for r in rows}
    with db.session() as session:
        result.expired = mark_expired(session, done, now, actor)
    result.bytes_freed = sum(sizes[i] for i in done)
    result.last_id = int(rows[-1][0])
    result.more = len(rows) == limit
    return result


def sweep(
    db: Database,
    storage: Storage,
    now: datetime,
    *,
    batch: int = 500,
    on_batch: Callable[[Sweep], None] | None = None,
) -> Sweep:
    """Every file past retention, batch by batch (the daily job and tools)."""
    total, after = Sweep(), 0
    while True:
        step = sweep_batch(db, storage, now, after_id=after, limit=batch)
        if after == 0:
            total.due, total.due_bytes = step.due, step.due_bytes
        total.expired += step.expired
        total.bytes_freed += step.bytes_freed
        total.errors.extend(step.errors)
        if on_batch is not None:
            on_batch(step)
        if not step.more or step.last_id is None:
            return total
        after = step.last_id
