"""IANA time zone names, checked against the tz database."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def check_timezone(name: str) -> str:
    """Returns ``name`` if it is an IANA zone; raises ``ValueError`` otherwise."""
    if not name or name.startswith(("/", ".")) or ".." in name:
        raise ValueError(f"unknown time zone {name!r}")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (use an IANA name such as America/Mexico_City)"
        ) from None
    return name
