"""Channel accounts: a WhatsApp business number, or the company's Chat App."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, UniqueConstraint
from sqlmodel import Field, SQLModel

from max_server.models.base import created_at_field, fk, id_field

CHANNEL_KINDS = ("whatsapp", "chat_app")


class ChannelAccount(SQLModel, table=True):
    __tablename__ = "channel_accounts"
    __table_args__ = (
        UniqueConstraint("kind", "external_id", name="uq_channel_accounts_kind_external"),
        CheckConstraint("kind IN ('whatsapp', 'chat_app')", name="kind"),
    )

    id: int | None = id_field()
    kind: str = Field(max_length=16)
    # WhatsApp: Meta's phone_number_id. Chat App: the app's name as the backend posts it.
    external_id: str = Field(max_length=64)
    name: str = Field(default="", max_length=200)
    waba_id: str | None = Field(default=None, max_length=64)
    display_number: str | None = Field(default=None, max_length=32)
    default_team_id: int | None = fk("teams.id", nullable=True, ondelete="SET NULL")
    is_active: bool = Field(default=True)
    created_at: datetime = created_at_field()
