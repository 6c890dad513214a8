"""Phone numbers in E.164 (``+5215512345678``), as WhatsApp and people write them."""

from __future__ import annotations

import re

_DIGITS = re.compile(r"\D+")


def to_e164(raw: str | None) -> str | None:
    """``+52 55 1234 5678``, ``525512345678`` and ``0052…`` all become ``+52…``; None if empty."""
    if not raw:
        return None
    value = raw.strip()
    digits = _DIGITS.sub("", value)
    if value.startswith("00"):
        digits = digits[2:]
    if not digits or len(digits) < 6 or len(digits) > 15:
        return None
    return "+" + digits
