"""Wire models for canned responses (the seed's ``{"responses": [...]}``)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator

from max_server.schemas.core import Id, Input, TeamRef, Wire

CannedScope = Literal["global", "team", "personal"]
SHORTCUT_RE = re.compile(r"^/[a-z0-9_-]+$")
SHORTCUT_RULE = "a shortcut is / followed by lowercase letters, digits, _ or - (e.g. /greeting)"


def normalise_shortcut(value: str) -> str:
    """``greeting`` → ``/greeting``; refuses anything else than the rule allows."""
    text = value.strip()
    if not text.startswith("/"):
        text = "/" + text
    if not SHORTCUT_RE.match(text) or len(text) > 64:
        raise ValueError(SHORTCUT_RULE + " (at most 64 characters)")
    return text


class CannedResponsePublic(Wire):
    id: Id
    scope: CannedScope
    team: TeamRef | None = None
    owner_id: Id | None = None
    shortcut: str
    title: str
    content: str
    category: str | None = None
    usage_count: int
    variables: list[str] = Field(default=[], description="the {{variables}} the content uses, in order")
    effective: bool = Field(
        True,
        description="whether /shortcut inserts this one for the caller: personal > team > global "
        "when a shortcut repeats",
    )
    created_at: datetime
    updated_at: datetime


class CannedResponseList(Wire):
    responses: list[CannedResponsePublic]
    next_cursor: str | None = None


class CannedResponseCreate(Input):
    """Scope: ``team_id`` (id or slug) for a team's, ``personal: true`` for one's own, neither
    for a global one (admins only)."""

    shortcut: str = Field(min_length=1, max_length=64)
    title: str = Field(min_length=1, max_length=200)
    content: str = Field(min_length=1, max_length=4096)
    category: str | None = Field(None, max_length=64)
    team_id: Id | None = None
    personal: bool = False

    @field_validator("shortcut")
    @classmethod
    def _shortcut(cls, value: str) -> str:
        return normalise_shortcut(value)


class CannedResponseUpdate(Input):
    shortcut: str | None = Field(None, min_length=1, max_length=64)
    title: str | None = Field(None, min_length=1, max_length=200)
    content: str | None = Field(None, min_length=1, max_length=4096)
    category: str | None = Field(None, max_length=64)

    @field_validator("shortcut")
    @classmethod
    def _shortcut(cls, value: str | None) -> str | None:
        return None if value is None else normalise_shortcut(value)


class CannedRender(Input):
    """Values for the variables the context does not give (``order_id``), or that override it."""

    conversation_id: Id | None = None
    variables: dict[str, str] = Field(default_factory=dict)


class CannedSend(Input):
    conversation_id: Id
    variables: dict[str, str] = Field(default_factory=dict)


class CannedRendered(Wire):
    text: str
    variables: dict[str, str] = Field(default={}, description="the values used, by variable")


class CannedUsage(Wire):
    id: Id
    usage_count: int
