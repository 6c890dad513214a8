"""The one clock. Services ask it for the time; tests move it.

Everything that needs "now" in Python calls :func:`now`. Leases and periodic ticks use the
database's own clock instead (see ``jobs``), because several processes must agree on them.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class Clock:
    """Wall-clock time, always timezone-aware UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock(Clock):
    """A clock that stands still until it is told to move (tests, demos)."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FrozenClock needs a timezone-aware datetime")
        self._at = at.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._at

    def set(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FrozenClock needs a timezone-aware datetime")
        with self._lock:
            self._at = at.astimezone(UTC)

    def advance(self, delta: timedelta | None = None, /, **kwargs: float) -> datetime:
        step = delta if delta is not None else timedelta(**kwargs)
        with self._lock:
            self._at += step
            return self._at


_clock: Clock = Clock()


def now() -> datetime:
    return _clock.now()


def get_clock() -> Clock:
    return _clock


def use_clock(clock: Clock) -> Clock:
    """Installs ``clock`` process-wide and returns the previous one (to restore it)."""
    global _clock
    previous, _clock = _clock, clock
    return previous
