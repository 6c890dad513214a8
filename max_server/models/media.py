"""Media attached to messages, and inbound channel payloads kept as they came."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Index, text
from sqlmodel import Field, SQLModel

from max_server.models.base import created_at_field, fk, id_field, json_field, time_field

MEDIA_STATUSES = ("pending", "stored", "failed", "expired")


class MediaFile(SQLModel, table=True):
    __tablename__ = "media_files"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'stored', 'failed', 'expired')", name="status"),
        Index(
            "ix_media_files_stored_expires",
            "expires_at",
            postgresql_where=text("status = 'stored'"),
            sqlite_where=text("status = 'stored'"),
        ),
    )

    id: int | None = id_field()
    message_id: int = fk("messages.id")
    conversation_id: int = fk("conversations.id", index=False)
    channel_media_id: str | None = Field(default=None, max_length=255)
    source_url: str | None = Field(default=None)  # Chat App attachments arrive by URL
    media_type: str = Field(max_length=32)  # image|video|audio|document|sticker
    mime_type: str | None = Field(default=None, max_length=255)
    filename: str | None = Field(default=None, max_length=255)
    expected_sha256: str | None = Field(default=None, max_length=128)  # as the channel announced it
    sha256: str | None = Field(default=None, max_length=64)  # hex, of the bytes we stored
    size: int | None = Field(default=None)
    storage_key: str | None = Field(default=None, max_length=512)
    status: str = Field(default="pending", max_length=16)
    reason: str | None = Field(default=None)
    expires_at: datetime | None = time_field()
    stored_at: datetime | None = time_field()
    created_at: datetime = created_at_field()


class PendingStatus(SQLModel, table=True):
    """A delivery status that arrived before we knew its message id (Meta is fast)."""

    __tablename__ = "pending_statuses"
    __table_args__ = (Index("ix_pending_statuses_lookup", "channel", "channel_message_id"),)

    id: int | None = id_field()
    channel: str = Field(max_length=16)
    channel_message_id: str = Field(max_length=255)
    status: str = Field(max_length=16)
    occurred_at: datetime | None = time_field()
    payload: dict[str, Any] = json_field(dict)
    created_at: datetime = created_at_field()


class InboundEvent(SQLModel, table=True):
    """Webhook content MAX does not act on (yet): unknown fields, errors, orphan pieces.
    Kept, never dropped, so nothing Meta tells us is lost."""

    __tablename__ = "inbound_events"

    id: int | None = id_field()
    channel: str = Field(max_length=16)
    kind: str = Field(max_length=64, index=True)
    payload: dict[str, Any] = json_field(dict)
    created_at: datetime = created_at_field()
