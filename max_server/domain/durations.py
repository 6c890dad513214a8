"""Human durations: ``90s``, ``3m``, ``1h30m``, ``2d``; integer seconds on the wire."""

from __future__ import annotations

import re

_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+)([wdhms])")


def parse_duration(text: str | int) -> int:
    """Seconds in ``text``. A bare number is seconds. Raises ``ValueError`` with the reason."""
    if isinstance(text, bool):
        raise ValueError("a duration is a number of seconds or text such as 90s, 3m, 1h30m")
    if isinstance(text, int):
        if text < 0:
            raise ValueError("a duration cannot be negative")
        return text
    value = text.strip().lower().replace(" ", "")
    if not value:
        raise ValueError("empty duration")
    if value.isdigit():
        return int(value)
    pos, total, seen = 0, 0, set()
    for match in _PART.finditer(value):
        if match.start() != pos:
            break
        unit = match.group(2)
        if unit in seen:
            raise ValueError(f"unit {unit!r} repeats in duration {text!r}")
        seen.add(unit)
        total += int(match.group(1)) * _UNITS[unit]
        pos = match.end()
    if pos != len(value):
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 3m, 1h30m, 2d)")
    return total


def format_duration(seconds: int | float) -> str:
    """``5400`` → ``1h30m``; ``0`` → ``0s``; negative values get a leading ``-``."""
    total = round(seconds)
    sign = "-" if total < 0 else ""
    total = abs(total)
    if total == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return sign + "".join(parts)
