"""Wire models for media: a file's metadata, a freshly signed link to it, and retention sweeps."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from max_server.schemas.core import Id, Wire

MediaStatus = Literal["pending", "stored", "failed", "expired"]


class MediaPublic(Wire):
    """A media file as agents see it (``media.stored`` and ``media.failed`` events carry this)."""

    id: Id
    message_id: Id
    conversation_id: Id
    media_type: str = Field(description="image, video, audio, document or sticker")
    mime_type: str | None = None
    filename: str | None = Field(None, description="the name the customer gave it, if any")
    size: int | None = Field(None, description="bytes, once stored")
    sha256: str | None = Field(None, description="hex digest of the stored bytes")
    status: MediaStatus
    reason: str | None = Field(None, description="why it failed, was refused, or expired")
    stored_at: datetime | None = None
    retained_until: datetime | None = Field(
        None, description="when retention deletes the file (media.retention_days after storing)"
    )
    created_at: datetime


class MediaLink(MediaPublic):
    """``GET /api/v1/media/{id}``: the metadata plus a link minted for this request (never stored)."""

    url: str
    expires_at: datetime = Field(description="when `url` stops working")


class MediaCleanupError(Wire):
    id: Id
    storage_key: str | None = None
    error: str


class MediaCleanup(Wire):
    """One call of ``POST /api/v1/media/cleanup``: what was due, and what this batch did."""

    dry_run: bool
    now: datetime
    due: int = Field(description="stored media past retention (after `cursor`) when the call began")
    due_bytes: int
    expired: int = Field(0, description="files deleted and marked expired by this call")
    bytes_freed: int = 0
    errors: list[MediaCleanupError] = Field(default_factory=list)
    next_cursor: str | None = Field(None, description="call again with this cursor to continue")
