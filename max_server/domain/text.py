"""Text as databases accept it."""

from __future__ import annotations

import re
from typing import Any

REPLACEMENT = "\ufffd"
# NUL, and lone surrogates (JSON's "\ud800" escapes decode to them): neither can be encoded as
# UTF-8, so PostgreSQL refuses them in text and JSON, and SQLite's driver cannot send them.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(value: Any) -> Any:
    """``value`` with NUL characters and lone surrogates replaced, at any depth of dicts and
    lists; everything else unchanged. The replacement stays visible."""
    if isinstance(value, str):
        return _UNSTORABLE.sub(REPLACEMENT, value) if _UNSTORABLE.search(value) else value
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v) for v in value]
    return value
