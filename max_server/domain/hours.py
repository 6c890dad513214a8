"""Business hours as pure arithmetic: is a team open at an instant, when does it open or close
next, and how many business seconds lie between two instants.

The model, stated once:

* A :class:`Schedule` has an IANA time zone, weekly intervals in local wall-clock time and
  holidays (local dates). An interval opens on its weekday at ``opens`` and runs to ``closes``
  the same day, or past midnight into the next day when ``closes <= opens`` (``22:00–06:00``;
  ``09:00–00:00`` ends at midnight; equal times mean 24 hours). A day may have several intervals
  (lunch breaks, split shifts); overlapping ones simply union.
* A holiday closes its whole local date, midnight to midnight, including the tail of an
  overnight interval that opened the day before.
* A schedule without intervals is open around the clock (minus its holidays): a team that has
  not configured hours is never "after hours".
* An instant is open when its local wall-clock time falls inside an interval of a non-holiday
  date. Across DST changes this is exact: a 01:00–04:00 interval lasts two real hours on the
  night clocks spring forward and four when they fall back.

Every function takes aware datetimes and returns aware UTC datetimes. Offsets are taken from
the tz database; the instants where a zone's offset changes are found by probing each hour and
bisecting to the second (cached per zone and year), so no zone's rule is hard-coded.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from max_server.domain.timezones import check_timezone

DAY = 86_400
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# How far ahead to look for an opening before concluding there is none (years of holidays).
HORIZON_DAYS = 3 * 366
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_WALL_EPOCH = datetime(1970, 1, 1)


@dataclass(frozen=True, order=True)
class Interval:
    weekday: int  # 0 = Monday
    opens: time
    closes: time

    def __post_init__(self) -> None:
        if not 0 <= self.weekday <= 6:
            raise ValueError(f"weekday must be 0 (Monday) to 6 (Sunday), not {self.weekday}")

    @property
    def overnight(self) -> bool:
        return _seconds(self.closes) <= _seconds(self.opens)


@dataclass(frozen=True)
class Schedule:
    timezone: str
    intervals: tuple[Interval, ...] = ()
    holidays: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        check_timezone(self.timezone)  # ValueError for an unknown zone

    @property
    def always_open(self) -> bool:
        return not self.intervals and not self.holidays

    @property
    def zone(self) -> ZoneInfo:
        return _zone(self.timezone)


@functools.lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _seconds(value: time) -> int:
    return value.hour * 3600 + value.minute * 60 + value.second


def _check_aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime {at!r}: pass a timezone-aware one")


# Local coverage of one date --------------------------------------------------------------
def coverage(schedule: Schedule, day: date) -> list[tuple[int, int]]:
    """Open ranges of local ``day`` as sorted, disjoint ``(start, end)`` seconds after midnight
    (wall clock; ``end`` may be 86400)."""
    if day in schedule.holidays:
        return []
    if not schedule.intervals:
        return [(0, DAY)]
    weekday = day.weekday()
    previous = (weekday - 1) % 7
    ranges: list[tuple[int, int]] = []
    for interval in schedule.intervals:
        opens, closes = _seconds(interval.opens), _seconds(interval.closes)
        if interval.weekday == weekday:
            ranges.append((opens, closes if closes > opens else DAY))
        if interval.weekday == previous and closes <= opens and closes > 0:
            ranges.append((0, closes))  # the tail of last night's interval
    return _merge(ranges)


def _merge(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if start >= end:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


# Offsets and their changes ---------------------------------------------------------------
def _offset(zone: ZoneInfo, epoch: int) -> int:
    shift = datetime.fromtimestamp(epoch, UTC).astimezone(zone).utcoffset()
    assert shift is not None
    return int(shift.total_seconds())


@functools.lru_cache(maxsize=1024)
def _transitions(zone_name: str, year: int) -> tuple[int, ...]:
    """Epoch seconds within UTC ``year`` at which the zone's offset changes."""
    zone = _zone(zone_name)
    start = int((datetime(year, 1, 1, tzinfo=UTC) - _EPOCH).total_seconds())
    end = int((datetime(year + 1, 1, 1, tzinfo=UTC) - _EPOCH).total_seconds())
    found: list[int] = []
    low = start - 3600
    low_offset = _offset(zone, low)
    while low < end:
        high = min(low + 3600, end)
        high_offset = _offset(zone, high)
        if high_offset != low_offset:
            a, b = low, high  # offset(a) == low_offset != offset(b)
            while b - a > 1:
                middle = (a + b) // 2
                if _offset(zone, middle) == low_offset:
                    a = middle
                else:
                    b = middle
            if start <= b < end:
                found.append(b)
            low, low_offset = b, _offset(zone, b)
            continue
        low, low_offset = high, high_offset
    return tuple(found)


def _pieces(zone_name: str, start: datetime) -> Iterator[tuple[datetime, datetime, timedelta]]:
    """Consecutive UTC spans from ``start`` to the horizon, each with its constant UTC offset."""
    zone = _zone(zone_name)
    limit = start + timedelta(days=HORIZON_DAYS + 2)
    current = start
    while current < limit:
        change = _next_transition(zone_name, current, limit)
        end = change if change is not None else limit
        yield current, end, _offset_td(zone, current)
        current = end


def _next_transition(zone_name: str, after: datetime, limit: datetime) -> datetime | None:
    epoch = (after - _EPOCH).total_seconds()
    for year in range(after.year, limit.year + 1):
        for change in _transitions(zone_name, year):
            if change > epoch:
                found = _EPOCH + timedelta(seconds=change)
                return found if found < limit else None
    return None


def _offset_td(zone: ZoneInfo, at: datetime) -> timedelta:
    shift = at.astimezone(zone).utcoffset()
    assert shift is not None
    return shift


# Open segments in UTC --------------------------------------------------------------------
def segments(
    schedule: Schedule, start: datetime, *, merge: bool = True
) -> Iterator[tuple[datetime, datetime]]:
    """The schedule's open spans from ``start`` on, in UTC and in order, the first one clipped
    to ``start``; they stop at the horizon. ``merge`` joins spans that touch (a shift running
    through midnight is one span) at the cost of looking ahead; sums do not need it."""
    _check_aware(start)
    start = start.astimezone(UTC)
    pending: tuple[datetime, datetime] | None = None
    for low, high, offset in _pieces(schedule.timezone, start):
        for span in _piece_segments(schedule, low, high, offset):
            if not merge:
                yield span
                continue
            if pending is not None and span[0] <= pending[1]:
                pending = (pending[0], max(pending[1], span[1]))
                continue
            if pending is not None:
                yield pending
            pending = span
    if pending is not None:
        yield pending


def _piece_segments(
    schedule: Schedule, low: datetime, high: datetime, offset: timedelta
) -> Iterator[tuple[datetime, datetime]]:
    """Open spans within ``[low, high)``, where local wall time is UTC + ``offset``."""
    wall_low = _wall(low, offset)
    wall_high = _wall(high, offset)
    day = wall_low.date()
    while datetime.combine(day, time()) < wall_high:
        midnight = datetime.combine(day, time())
        for begin, end in coverage(schedule, day):
            a = max(midnight + timedelta(seconds=begin), wall_low)
            b = min(midnight + timedelta(seconds=end), wall_high)
            if a < b:
                yield _utc(a, offset), _utc(b, offset)
        day += timedelta(days=1)


def _wall(at: datetime, offset: timedelta) -> datetime:
    return _WALL_EPOCH + (at - _EPOCH) + offset


def _utc(wall: datetime, offset: timedelta) -> datetime:
    return _EPOCH + (wall - _WALL_EPOCH) - offset


# The public questions --------------------------------------------------------------------
def is_open(schedule: Schedule, at: datetime) -> bool:
    _check_aware(at)
    local = at.astimezone(schedule.zone)
    second = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1_000_000
    return any(begin <= second < end for begin, end in coverage(schedule, local.date()))


def next_open(schedule: Schedule, at: datetime) -> datetime | None:
    """The first instant at or after ``at`` when the team is open (``at`` itself if open now);
    None if it never opens within the horizon."""
    _check_aware(at)
    if is_open(schedule, at):
        return at.astimezone(UTC)
    for begin, _ in segments(schedule, at, merge=False):
        return begin
    return None


def next_close(schedule: Schedule, at: datetime) -> datetime | None:
    """The first instant at or after ``at`` when the team is closed (``at`` itself if closed
    now); None if it stays open throughout the horizon (no hours, no holidays)."""
    _check_aware(at)
    if not is_open(schedule, at):
        return at.astimezone(UTC)
    if schedule.always_open:
        return None
    horizon = at.astimezone(UTC) + timedelta(days=HORIZON_DAYS)
    for _, end in segments(schedule, at):
        return end if end < horizon else None
    return None


def business_seconds(schedule: Schedule, start: datetime, end: datetime) -> float:
    """Open seconds in ``[start, end)``; 0 when ``end <= start``."""
    _check_aware(start)
    _check_aware(end)
    if end <= start:
        return 0.0
    if schedule.always_open:
        return (end - start).total_seconds()
    total = timedelta()
    for begin, finish in segments(schedule, start, merge=False):
        if begin >= end:
            break
        total += min(finish, end) - begin
    return total.total_seconds()


def add_business_seconds(schedule: Schedule, start: datetime, seconds: float) -> datetime:
    """The instant at which ``seconds`` of open time have passed since ``start`` (Friday 17:55
    plus 10 minutes of Mon–Fri 09:00–18:00 is Monday 09:05). Raises ``ValueError`` when the
    schedule never opens that much within the horizon."""
    _check_aware(start)
    start = start.astimezone(UTC)
    if seconds <= 0:
        return start
    remaining = timedelta(seconds=seconds)
    if schedule.always_open:
        return start + remaining
    for begin, finish in segments(schedule, start, merge=False):
        if remaining <= finish - begin:
            return begin + remaining
        remaining -= finish - begin
    raise ValueError("the schedule does not open long enough within three years")


def parse_days(text: str) -> list[int]:
    """``mon-fri``, ``sat,sun``, ``mon,wed-fri``, ``all`` → weekday numbers (0 = Monday)."""
    value = text.strip().lower()
    if value in ("all", "daily", "every"):
        return list(range(7))
    if value == "weekdays":
        return list(range(5))
    if value == "weekends":
        return [5, 6]
    days: set[int] = set()
    for part in value.split(","):
        part = part.strip()
        if "-" in part:
            first, _, last = part.partition("-")
            a, b = _day(first), _day(last)
            days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(b + 1)])
        else:
            days.add(_day(part))
    return sorted(days)


def _day(name: str) -> int:
    key = name.strip()[:3]
    if key not in WEEKDAYS:
        raise ValueError(f"unknown day {name!r}: use mon, tue, wed, thu, fri, sat, sun")
    return WEEKDAYS.index(key)
