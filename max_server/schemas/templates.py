"""Wire models of WhatsApp message templates."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from max_server.schemas.core import Id, Input, Ref, Wire

SUBMITTED_MESSAGE = "Template submitted to WhatsApp for approval"


class TemplateCreate(Input):
    """The seed's body. Checked before anything reaches Meta (see ``domain/template_rules``)."""

    name: str = Field(max_length=600)
    language: str = Field(max_length=16)
    category: str = Field(max_length=32)
    components: list[dict[str, Any]]
    channel: str | None = Field(
        None, description="channel account id or phone_number_id; default: the first WhatsApp number"
    )


class TemplatePublic(Wire):
    id: Id
    channel_account_id: Id
    name: str
    language: str
    category: str
    status: str  # Meta's value as sent: PENDING, APPROVED, REJECTED, PAUSED, DISABLED, …
    components: list[Any] = Field(default_factory=list)
    parameter_format: str = "positional"
    body: str = ""  # the BODY component's text
    parameter_count: int = 0  # body variables a send must fill
    header_parameter_count: int = 0
    whatsapp_template_id: str | None = None
    rejection_reason: str | None = None  # Meta's reason for the current status, when it gave one
    quality: str | None = None
    created_by: Ref | None = None
    created_at: datetime
    updated_at: datetime


class TemplateCreated(TemplatePublic):
    message: str = SUBMITTED_MESSAGE


class TemplateList(Wire):
    templates: list[TemplatePublic]
    next_cursor: str | None = None


class TemplateDeleted(Wire):
    deleted: list[TemplatePublic]


class TemplateSyncResult(Wire):
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    accounts: int = 0


class TemplateSend(Input):
    """``template`` in ``POST /api/v1/conversations/{id}/messages``."""

    name: str = Field(min_length=1, max_length=512)
    language: str = Field(min_length=1, max_length=16)
    parameters: list[str] | dict[str, str] = Field(default_factory=list)
    header_parameters: list[str] = Field(default_factory=list)
