"""Exact sliding windows on the customer's clock.

Messages arrive out of order (Meta retries, several processes), so "the last 60 seconds before
this message" is not enough: a message fits only if, once added, no window of ``window`` seconds
anywhere holds more than ``limit`` accepted messages. Only windows containing the new time can
change, so only accepted times within one window on either side matter.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from datetime import datetime, timedelta


def fits(accepted: Iterable[datetime], at: datetime, window: timedelta, limit: int) -> bool:
    """True when adding ``at`` keeps every window ``(b - window, b]`` at or under ``limit``."""
    times = sorted(accepted)
    # The windows containing ``at`` end at some b in [at, at + window); the count can only rise
    # at b = at or at b = an accepted time in (at, at + window), so those are the ones to check.
    ends = [at] + [t for t in times if at < t < at + window]
    for end in ends:
        inside = bisect_right(times, end) - bisect_right(times, end - window)  # times in (end - window, end]
        if inside + 1 > limit:
            return False
    return True
