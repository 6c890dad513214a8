"""Cursor pagination: ``?cursor=<next_cursor>&limit=N`` (default 50, at most 500)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from max_server.errors import BadRequest

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def encode_cursor(**position: Any) -> str:
    raw = json.dumps(position, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> dict[str, Any]:
    if not cursor:
        return {}
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadRequest("the cursor is not one this server gave out", code="invalid_cursor") from None
    if not isinstance(value, dict):
        raise BadRequest("the cursor is not one this server gave out", code="invalid_cursor")
    return value


def cursor_int(cursor: str | None, key: str = "id") -> int | None:
    value = decode_cursor(cursor).get(key)
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadRequest("the cursor is not one this server gave out", code="invalid_cursor") from None


def clamp_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    return max(1, min(MAX_LIMIT, limit))
