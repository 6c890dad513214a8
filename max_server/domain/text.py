"""Text as databases accept it."""

from __future__ import annotations

from typing import Any

REPLACEMENT = "\ufffd"


def storable(value: Any) -> Any:
    """``value`` with NUL characters replaced (PostgreSQL refuses them in text and JSON), at any
    depth of dicts and lists; everything else unchanged. The replacement stays visible."""
    if isinstance(value, str):
        return value.replace("\x00", REPLACEMENT) if "\x00" in value else value
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v) for v in value]
    return value
