"""Media jobs: ``media.download`` for each inbound file, ``media.delete`` for erasure, and the
daily ``media.cleanup`` of files past retention.

A download (DESIGN §6): ask the Graph API where the file is (a fresh URL on every try: Meta's
live 5 minutes), or take the Chat App attachment's URL through the address guard; refuse sizes and
MIME types over WhatsApp's limits; stream into a temporary file while hashing; check the sha256
Meta announced; put the file into storage; record it. Network errors, 5xx, 429 and 404 (an
expired URL) are retried with backoff; the last failure, and every refusal, marks the media
``failed`` with a reason agents see.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlmodel import Session

from max_server import clock, netguard
from max_server.channels.whatsapp.graph import GraphError, GraphUnreachable
from max_server.channels.whatsapp.send import graph_client
from max_server.jobs.registry import JobContext, PermanentFailure, RetryLater, RetryPolicy, handler, periodic
from max_server.services import inbound
from max_server.services import media as media_service
from max_server.services.media import DownloadPlan
from max_server.services.present import MEDIA_TYPES
from max_server.settings import Settings
from max_server.storage import InvalidKey, StorageError, content_type, get_storage, rules

log = logging.getLogger("max.media")
CHUNK = 256 * 1024
DAY = 86400
_RETRY_STATUSES = frozenset({404, 408, 425, 429})


class Refused(Exception):
    """Retrying cannot help: the file is over a limit, of the wrong type, or corrupt."""


class Transient(Exception):
    """A try failed in a way the next one may not (network, 5xx, an expired URL)."""


@dataclass(frozen=True)
class Fetched:
    path: Path
    size: int
    sha256: str  # hex
    mime_type: str | None


# Ingest hook ------------------------------------------------------------------------------------
@inbound.on_message(inbound.ORDER_MEDIA)
def queue_downloads(session: Session, stored: inbound.Ingested, settings: Settings, now: datetime) -> None:
    assert stored.message.id is not None
    if stored.message.type not in MEDIA_TYPES:
        return  # text, locations, reactions…: no files (saves a query per message)
    held = "rate_limited" in (stored.message.flags or [])
    media_service.schedule_downloads(session, stored.message.id, held=held, now=now)


# media.download ---------------------------------------------------------------------------------
@handler(media_service.DOWNLOAD_KIND, RetryPolicy(max_attempts=10, base_delay=5, max_delay=1800))
def download(ctx: JobContext, payload: dict[str, Any]) -> None:
    media_id = int(payload["media_id"])
    with ctx.db.session(write=False) as session:
        plan = media_service.download_plan(session, media_id)
    if plan is None:
        return  # already stored, failed or gone: nothing to do (idempotent)
    try:
        fetched = fetch(ctx.settings, plan)
    except Refused as exc:
        _give_up(ctx, media_id, str(exc))
        return
    except Transient as exc:
        _retry_or_give_up(ctx, media_id, str(exc))
        return
    except StorageError as exc:
        _retry_or_give_up(ctx, media_id, f"storage: {exc}")
        return
    try:
        key = plan.storage_key(fetched.mime_type)
        get_storage(ctx.settings).put_file(key, fetched.path, content_type(fetched.mime_type))
    except StorageError as exc:
        _retry_or_give_up(ctx, media_id, f"storage: {exc}")
        return
    finally:
        fetched.path.unlink(missing_ok=True)
    with ctx.db.session() as session:
        recorded = media_service.mark_stored(
            session,
            media_id,
            storage_key=key,
            size=fetched.size,
            sha256=fetched.sha256,
            mime_type=fetched.mime_type,
            retention_days=ctx.settings.media.retention_days,
            now=clock.now(),
        )
    if recorded is None:
        # The row changed meanwhile: erased (keep no orphan file), or stored by another run of this
        # job under the same key (keep it).
        with ctx.db.session(write=False) as session:
            current = media_service.storage_key_of(session, media_id)
        if current != key:
            log.info("media %s was no longer pending when stored; removing %s", media_id, key)
            with contextlib.suppress(StorageError):
                get_storage(ctx.settings).delete(key)


def _give_up(ctx: JobContext, media_id: int, reason: str) -> None:
    log.info("media %s failed: %s", media_id, reason)
    with ctx.db.session() as session:
        media_service.mark_failed(session, media_id, reason, clock.now())


def _retry_or_give_up(ctx: JobContext, media_id: int, reason: str) -> None:
    if ctx.last_attempt:
        _give_up(ctx, media_id, f"{reason} (gave up after {ctx.attempt} tries)")
        return
    with ctx.db.session() as session:
        media_service.note_retry(session, media_id, f"{reason} (try {ctx.attempt} of {ctx.max_attempts})")
    raise RetryLater(reason)


def fetch(settings: Settings, plan: DownloadPlan) -> Fetched:
    """Downloads the plan's file into a temporary file (the caller deletes it)."""
    scratch: Path | None = getattr(get_storage(settings), "scratch_dir", None)
    if plan.channel_media_id:
        return _fetch_whatsapp(settings, plan, scratch)
    if plan.source_url:
        return _fetch_url(settings, plan, scratch)
    raise Refused("no media id or URL to download from")


def _fetch_whatsapp(settings: Settings, plan: DownloadPlan, scratch: Path | None) -> Fetched:
    assert plan.channel_media_id is not None
    client = graph_client(settings)
    try:
        info = client.get_media(plan.channel_media_id, plan.phone_number_id)
        mime_type = info.mime_type or plan.mime_type
        _check(plan.media_type, mime_type, info.file_size)
        with client.stream_media(info.url) as response:
            fetched = _save(response, plan.media_type, mime_type, scratch)
    except GraphError as exc:
        if exc.retryable or exc.status in _RETRY_STATUSES:
            hint = " (the download URL expired; a fresh one is asked for)" if exc.status == 404 else ""
            raise Transient(f"WhatsApp answered HTTP {exc.status}{hint}: {exc.message}") from None
        raise Refused(f"WhatsApp refused the download: {exc}") from None
    except GraphUnreachable as exc:
        raise Transient(f"WhatsApp unreachable: {exc.message}") from None
    _verify(fetched, [info.sha256, plan.expected_sha256])
    return fetched


def _fetch_url(settings: Settings, plan: DownloadPlan, scratch: Path | None) -> Fetched:
    assert plan.source_url is not None
    host = urlsplit(plan.source_url).hostname or "?"  # reasons never show the URL: it may hold a token
    timeout = float(settings.webhooks.timeout)
    # A client of its own per download, not a shared pool: the guard pins the URL to the checked
    # address, and a pool keyed by address would reuse a TLS connection made for one host name
    # for another on the same address (a CDN), unchecked by the second's certificate. Downloads
    # are few and large: a new connection each costs nothing that matters.
    client = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)), follow_redirects=False)
    allow_private = settings.webhooks.allow_private_networks
    try:
        with client, netguard.stream(client, "GET", plan.source_url, allow_private=allow_private) as response:
            status = response.status_code
            if status >= 500 or status in _RETRY_STATUSES:
                raise Transient(f"the attachment server {host} answered HTTP {status}")
            if not response.is_success:
                moved = " (redirects are not followed)" if response.is_redirect else ""
                raise Refused(f"the attachment server {host} answered HTTP {status}{moved}")
            mime_type = plan.mime_type or response.headers.get("content-type")
            _check(plan.media_type, mime_type, None)
            fetched = _save(response, plan.media_type, mime_type, scratch)
    except netguard.AddressRefused as exc:
        raise Refused(f"attachment URL refused: {exc}") from None
    except httpx.TransportError as exc:
        raise Transient(f"attachment server {host} unreachable: {type(exc).__name__}") from None
    _verify(fetched, [plan.expected_sha256])
    return fetched


def _check(media_type: str, mime_type: str | None, size: int | None) -> None:
    reason = rules.mime_refusal(media_type, mime_type) or rules.size_refusal(media_type, size)
    if reason:
        raise Refused(reason)


def _save(response: httpx.Response, media_type: str, mime_type: str | None, scratch: Path | None) -> Fetched:
    """Streams the body into a temporary file while hashing, stopping at the type's limit."""
    declared = response.headers.get("content-length", "")
    if declared.isdecimal():
        _check(media_type, mime_type, int(declared))
    limit = rules.limit_for(media_type)
    digest, size = hashlib.sha256(), 0
    with _temporary(scratch) as (path, out):
        for chunk in response.iter_bytes(CHUNK):
            size += len(chunk)
            if size > limit:
                raise Refused(rules.size_refusal(media_type, size, at_least=True) or "too large")
            digest.update(chunk)
            out.write(chunk)
    return Fetched(path, size, digest.hexdigest(), mime_type)


@contextlib.contextmanager
def _temporary(directory: Path | None) -> Iterator[tuple[Path, Any]]:
    """A new temporary file, removed if the block fails (kept, for the caller, if it succeeds)."""
    if directory is not None:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise Transient(f"storage: cannot create {directory}: {exc.strerror or exc}") from None
    try:
        fd, name = tempfile.mkstemp(prefix="max-media-", suffix=".part", dir=directory)
    except OSError as exc:
        raise Transient(f"cannot create a temporary file: {exc.strerror or exc}") from None
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            yield path, out
    except OSError as exc:  # the disk is full, most likely
        path.unlink(missing_ok=True)
        raise Transient(f"cannot write the temporary file: {exc.strerror or exc}") from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _verify(fetched: Fetched, announced: list[str | None]) -> None:
    ours = bytes.fromhex(fetched.sha256)
    for value in dict.fromkeys(a for a in announced if a):
        expected = rules.announced_digest(value)
        if expected is None:
            log.warning("unreadable sha256 announced for a media file (%r); not checked", value[:80])
            continue
        if expected != ours:
            fetched.path.unlink(missing_ok=True)
            got = base64.b64encode(ours).decode()
            raise Refused(f"checksum mismatch: sha256 announced {value}, downloaded file has {got}")


# media.delete -----------------------------------------------------------------------------------
@handler("media.delete", RetryPolicy(max_attempts=8, base_delay=30, max_delay=3600))
def delete(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Deletes stored objects by key (erasure); missing objects count as deleted."""
    keys = payload.get("storage_keys")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise PermanentFailure("payload needs storage_keys: a list of strings")
    failed = get_storage(ctx.settings).delete_many(keys)
    invalid = sorted(k for k, e in failed.items() if isinstance(e, InvalidKey))
    retryable = {k: e for k, e in failed.items() if not isinstance(e, InvalidKey)}
    if retryable:
        first = next(iter(retryable.values()))
        raise RetryLater(f"{len(retryable)} of {len(keys)} objects not deleted yet; first: {first}")
    if invalid:
        raise PermanentFailure(f"refused {len(invalid)} invalid storage key(s): {invalid[:5]}")


# media.cleanup ----------------------------------------------------------------------------------
@handler("media.cleanup", RetryPolicy(max_attempts=3, base_delay=300))
def cleanup(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Deletes files past ``media.retention_days`` and marks their rows ``expired``."""
    result = media_service.sweep(ctx.db, get_storage(ctx.settings), clock.now())
    if result.expired or result.errors:
        log.info(
            "media cleanup: %d expired, %d bytes freed, %d could not be deleted",
            result.expired,
            result.bytes_freed,
            len(result.errors),
        )
    for media_id, key, error in result.errors[:20]:
        log.warning("media %s (%s) not deleted: %s", media_id, key, error)


periodic("media.cleanup", DAY)
