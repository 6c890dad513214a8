"""Media: metadata with a freshly signed link, the local backend's signed downloads, cleanup."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse

from max_server import clock
from max_server.api.deps import AdminActor, AgentActor, DbDep, SessionDep, SettingsDep
from max_server.domain.durations import parse_duration
from max_server.errors import Forbidden, NotFound, Unprocessable
from max_server.schemas import MediaCleanup, MediaLink
from max_server.schemas.media import MediaCleanupError
from max_server.services import media as media_service
from max_server.services.pagination import cursor_int, encode_cursor
from max_server.storage import InvalidKey, content_disposition, content_type, get_storage
from max_server.storage.local import LinkRefused, LocalStorage

router = APIRouter(tags=["media"])
MAX_TTL_S = 7 * 24 * 3600


@router.get("/api/v1/media/{media_id}", response_model=MediaLink)
def read_media(
    session: SessionDep,
    actor: AgentActor,
    settings: SettingsDep,
    media_id: int,
    ttl: Annotated[
        str | None, Query(description="how long the link should work, e.g. `10m` (default media.link_ttl)")
    ] = None,
) -> MediaLink:
    """The media's metadata plus `url`, a link minted now (never stored) that works until
    `expires_at`: the requested `ttl` or the remaining retention, whichever is shorter. 410
    `media_expired` once retention deleted the file; 409 `media_pending` / `media_failed` otherwise
    (their `details` carry the metadata and the reason)."""
    try:
        ttl_s = parse_duration(ttl) if ttl else settings.media.link_ttl
    except ValueError as exc:
        raise Unprocessable(str(exc), code="invalid_ttl") from None
    if not 1 <= ttl_s <= MAX_TTL_S:
        raise Unprocessable("ttl must be between 1 second and 7 days", code="invalid_ttl")
    return media_service.link(
        session,
        actor,
        media_id,
        get_storage(settings),
        ttl_s=ttl_s,
        retention_days=settings.media.retention_days,
        now=clock.now(),
    )


@router.post("/api/v1/media/cleanup", response_model=MediaCleanup)
def cleanup_media(
    db: DbDep,
    actor: AdminActor,
    settings: SettingsDep,
    dry_run: bool = False,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> MediaCleanup:
    """Deletes one batch (``limit``) of files past retention and marks their rows `expired`.
    Call again with `next_cursor` until it is null; `due` (counted when the call began) lets a
    client show progress. With `dry_run=true` nothing changes: `due` and `due_bytes` say what
    a cleanup would remove."""
    now = clock.now()
    after = cursor_int(cursor) or 0
    if dry_run:
        with db.session(write=False) as session:
            due, due_bytes = media_service.due_totals(session, now, after)
        return MediaCleanup(dry_run=True, now=now, due=due, due_bytes=due_bytes)
    step = media_service.sweep_batch(db, get_storage(settings), now, after_id=after, limit=limit, actor=actor)
    return MediaCleanup(
        dry_run=False,
        now=now,
        due=step.due,
        due_bytes=step.due_bytes,
        expired=step.expired,
        bytes_freed=step.bytes_freed,
        errors=[MediaCleanupError(id=i, storage_key=k, error=e) for i, k, e in step.errors],
        next_cursor=encode_cursor(id=step.last_id) if step.more and step.last_id else None,
    )


@router.get(
    "/media/{key:path}",
    response_class=FileResponse,
    responses={403: {"description": "The link was altered or has expired"}},
)
def signed_download(
    settings: SettingsDep,
    key: str,
    exp: str | None = None,
    sig: str | None = None,
    name: str = "",
    type_: Annotated[str, Query(alias="type")] = "",
) -> FileResponse:
    """A file of the local storage backend, through a link from `GET /api/v1/media/{id}`: the
    HMAC signature (with `server.secret_key`) covers the key, expiry, name and content type."""
    storage = get_storage(settings)
    if not isinstance(storage, LocalStorage):
        raise NotFound("media links of this server point at its S3 bucket", code="not_found")
    try:
        storage.verify(key, exp, name, type_, sig)
        path = storage.path_for(key)
    except LinkRefused as exc:
        raise Forbidden(str(exc), code="link_expired" if exc.expired else "invalid_link") from None
    except InvalidKey:
        raise Forbidden("this media link is incomplete or has been altered", code="invalid_link") from None
    if not path.is_file():
        raise NotFound("this media file is no longer stored (retention or erasure)", code="media_not_found")
    return FileResponse(
        path,
        media_type=content_type(type_),
        headers={
            "Content-Disposition": content_disposition(name or path.name),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, max-age=0, no-store",
            "Referrer-Policy": "no-referrer",
        },
    )
