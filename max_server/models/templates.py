"""WhatsApp message templates, per channel account, name and language."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from max_server.models.base import created_at_field, fk, id_field, json_field


class WhatsAppTemplate(SQLModel, table=True):
    __tablename__ = "whatsapp_templates"
    __table_args__ = (
        # Names repeat across languages: a template is (account, name, language).
        UniqueConstraint(
            "channel_account_id", "name", "language", name="uq_whatsapp_templates_account_name_language"
        ),
    )

    id: int | None = id_field()
    channel_account_id: int = fk("channel_accounts.id", index=False)
    name: str = Field(max_length=512)
    language: str = Field(max_length=16)
    category: str = Field(max_length=32)
    components: list[Any] = json_field(list)
    parameter_format: str = Field(default="positional", max_length=16)
    status: str = Field(default="PENDING", max_length=32, index=True)
    whatsapp_template_id: str | None = Field(default=None, max_length=64, index=True)
    rejection_reason: str | None = Field(default=None)
    quality: str | None = Field(default=None, max_length=16)
    created_by_id: int | None = fk("users.id", nullable=True, ondelete="SET NULL", index=False)
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()
