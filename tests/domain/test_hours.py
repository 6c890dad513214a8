"""Business-hours arithmetic against a brute-force minute count, across time zones with and
without DST, overnight and split intervals, and holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from max_server.domain.hours import (
    HORIZON_DAYS,
    Interval,
    Schedule,
    add_business_seconds,
    business_seconds,
    is_open,
    next_close,
    next_open,
    parse_days,
)

ZONES = ("America/Mexico_City", "America/New_York", "Asia/Kolkata")
# New York springs forward on 2026-03-08 and falls back on 2026-11-01 (both at 02:00 local);
# Mexico City has no DST since 2022; Kolkata is +05:30 all year.
ANCHORS = (
    datetime(2026, 3, 7, 12, tzinfo=UTC),
    datetime(2026, 10, 31, 12, tzinfo=UTC),
    datetime(2026, 6, 15, tzinfo=UTC),
    datetime(2026, 12, 31, 12, tzinfo=UTC),
)
MON_FRI_9_18 = tuple(Interval(day, time(9), time(18)) for day in range(5))


def brute_open(schedule: Schedule, at: datetime) -> bool:
    """The model, read off the wall clock, independent of the code under test."""
    local = at.astimezone(ZoneInfo(schedule.timezone))
    if local.date() in schedule.holidays:
        return False
    if not schedule.intervals:
        return True
    now = local.hour * 60 + local.minute
    yesterday = (local.weekday() - 1) % 7
    for interval in schedule.intervals:
        opens = interval.opens.hour * 60 + interval.opens.minute
        closes = interval.closes.hour * 60 + interval.closes.minute
        if interval.weekday == local.weekday():
            if closes > opens and opens <= now < closes:
                return True
            if closes <= opens and now >= opens:
                return True
        if interval.weekday == yesterday and closes <= opens and now < closes:
            return True
    return False


def brute_minutes(schedule: Schedule, start: datetime, end: datetime) -> int:
    count, at = 0, start
    while at < end:
        count += brute_open(schedule, at)
        at += timedelta(minutes=1)
    return count


clock_times = st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45, 59]))
intervals = st.builds(Interval, st.integers(0, 6), clock_times, clock_times)


@st.composite
def cases(draw: st.DrawFn) -> tuple[Schedule, datetime, datetime]:
    zone = draw(st.sampled_from(ZONES))
    anchor = draw(st.sampled_from(ANCHORS))
    start = anchor + timedelta(minutes=draw(st.integers(-3 * 1440, 3 * 1440)))
    end = start + timedelta(minutes=draw(st.integers(0, 4 * 1440)))
    day0 = start.astimezone(ZoneInfo(zone)).date()
    holidays = frozenset(day0 + timedelta(days=d) for d in draw(st.sets(st.integers(-1, 5), max_size=3)))
    chosen = tuple(draw(st.lists(intervals, max_size=5)))
    return Schedule(zone, chosen, holidays), start, end


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
@example(  # spring forward with an overnight interval and a split day
    (
        Schedule(
            "America/New_York",
            (Interval(5, time(22), time(6)), Interval(6, time(1), time(3)), Interval(6, time(9), time(12))),
        ),
        datetime(2026, 3, 7, 12, tzinfo=UTC),
        datetime(2026, 3, 9, 12, tzinfo=UTC),
    )
)
@example(  # fall back: 01:00–02:00 happens twice
    (
        Schedule("America/New_York", (Interval(6, time(0, 30), time(1, 30)),)),
        datetime(2026, 11, 1, 0, tzinfo=UTC),
        datetime(2026, 11, 2, 0, tzinfo=UTC),
    )
)
@example(  # Kolkata's half-hour offset, a holiday cutting an overnight tail
    (
        Schedule(
            "Asia/Kolkata",
            (Interval(0, time(20), time(2)), Interval(1, time(9), time(17))),
            frozenset({date(2026, 6, 16)}),
        ),
        datetime(2026, 6, 15, tzinfo=UTC),
        datetime(2026, 6, 17, tzinfo=UTC),
    )
)
def test_business_seconds_equals_a_brute_force_minute_count(
    case: tuple[Schedule, datetime, datetime],
) -> None:
    schedule, start, end = case
    assert business_seconds(schedule, start, end) == 60 * brute_minutes(schedule, start, end)


@settings(max_examples=150, deadline=None)
@given(cases())
def test_is_open_next_open_and_next_close_agree_with_the_model(
    case: tuple[Schedule, datetime, datetime],
) -> None:
    schedule, start, _ = case
    assert is_open(schedule, start) == brute_open(schedule, start)
    opening = next_open(schedule, start)
    if opening is not None:
        assert brute_open(schedule, opening)
        assert opening >= start
        if opening > start:  # closed all the way from start to the opening
            assert brute_minutes(schedule, start, opening) == 0
            assert not brute_open(schedule, opening - timedelta(minutes=1))
    closing = next_close(schedule, start)
    if closing is not None:
        assert not brute_open(schedule, closing)
        if closing > start:  # open all the way to the closing
            assert brute_minutes(schedule, start, closing) == (closing - start) / timedelta(minutes=1)


@settings(max_examples=150, deadline=None)
@given(cases(), st.integers(1, 3 * 1440))
def test_add_business_seconds_is_the_inverse_of_business_seconds(
    case: tuple[Schedule, datetime, datetime], minutes: int
) -> None:
    schedule, start, _ = case
    if not schedule.intervals and len(schedule.holidays) == 0:
        assert add_business_seconds(schedule, start, minutes * 60) == start + timedelta(minutes=minutes)
        return
    try:
        due = add_business_seconds(schedule, start, minutes * 60)
    except ValueError:  # e.g. 15 minutes a week cannot add up to days within the horizon
        horizon = start + timedelta(days=HORIZON_DAYS)
        assert business_seconds(schedule, start, horizon) < minutes * 60
        return
    assert business_seconds(schedule, start, due) == minutes * 60
    # The earliest such instant: one minute earlier, a full minute of open time is still owed.
    assert business_seconds(schedule, start, due - timedelta(minutes=1)) == (minutes - 1) * 60


def test_friday_1755_plus_ten_business_minutes_is_monday_0905() -> None:
    mexico = ZoneInfo("America/Mexico_City")
    schedule = Schedule("America/Mexico_City", MON_FRI_9_18)
    friday = datetime(2026, 3, 6, 17, 55, tzinfo=mexico)
    assert add_business_seconds(schedule, friday, 600) == datetime(2026, 3, 9, 9, 5, tzinfo=mexico)
    assert add_business_seconds(schedule, friday, 300) == datetime(2026, 3, 6, 18, 0, tzinfo=mexico)


def test_dst_days_change_how_long_an_interval_lasts() -> None:
    new_york = ZoneInfo("America/New_York")
    schedule = Schedule("America/New_York", tuple(Interval(d, time(1), time(4)) for d in range(7)))
    spring = datetime(2026, 3, 8, tzinfo=new_york)
    fall = datetime(2026, 11, 1, tzinfo=new_york)
    assert business_seconds(schedule, spring, spring + timedelta(days=1)) == 2 * 3600
    assert business_seconds(schedule, fall, fall + timedelta(days=1)) == 4 * 3600
    # An interval that opens inside the skipped hour opens when the clock jumps to 03:00.
    skipped = Schedule("America/New_York", (Interval(6, time(2, 30), time(4)),))
    assert next_open(skipped, spring) == datetime(2026, 3, 8, 3, tzinfo=new_york)


def test_overnight_split_and_holiday() -> None:
    kolkata = ZoneInfo("Asia/Kolkata")
    schedule = Schedule(
        "Asia/Kolkata",
        (
            Interval(4, time(22), time(2)),  # Friday night into Saturday
            Interval(0, time(9), time(13)),
            Interval(0, time(14), time(18)),  # Monday with a lunch break
        ),
        frozenset({date(2026, 6, 22)}),  # a Monday holiday
    )
    friday_night = datetime(2026, 6, 19, 23, tzinfo=kolkata)
    assert is_open(schedule, friday_night)
    assert next_close(schedule, friday_night) == datetime(2026, 6, 20, 2, tzinfo=kolkata)
    # The holiday Monday is skipped; the next opening is the following Friday night.
    assert next_open(schedule, datetime(2026, 6, 20, 3, tzinfo=kolkata)) == datetime(
        2026, 6, 26, 22, tzinfo=kolkata
    )
    monday = datetime(2026, 6, 29, tzinfo=kolkata)
    assert business_seconds(schedule, monday, monday + timedelta(days=1)) == 8 * 3600
    assert not is_open(schedule, datetime(2026, 6, 29, 13, 30, tzinfo=kolkata))


def test_no_intervals_means_always_open_but_holidays_still_close() -> None:
    always = Schedule("America/Mexico_City")
    at = datetime(2026, 3, 2, 3, tzinfo=UTC)
    assert is_open(always, at)
    assert next_close(always, at) is None
    assert business_seconds(always, at, at + timedelta(hours=5)) == 5 * 3600
    with_holiday = Schedule("America/Mexico_City", holidays=frozenset({date(2026, 3, 3)}))
    closing = next_close(with_holiday, at)
    assert closing == datetime(2026, 3, 3, tzinfo=ZoneInfo("America/Mexico_City"))


def test_midnight_close_and_24_hour_intervals() -> None:
    mexico = ZoneInfo("America/Mexico_City")
    to_midnight = Schedule("America/Mexico_City", (Interval(0, time(20), time(0)),))
    monday = datetime(2026, 3, 2, tzinfo=mexico)
    assert business_seconds(to_midnight, monday, monday + timedelta(days=2)) == 4 * 3600
    full_day = Schedule("America/Mexico_City", (Interval(0, time(8), time(8)),))
    assert business_seconds(full_day, monday, monday + timedelta(days=7)) == 24 * 3600


def test_naive_datetimes_and_unknown_zones_are_refused() -> None:
    with pytest.raises(ValueError):
        is_open(Schedule("UTC"), datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        Schedule("Mars/Olympus_Mons")


def test_parse_days() -> None:
    assert parse_days("mon-fri") == [0, 1, 2, 3, 4]
    assert parse_days("sat,sun") == [5, 6]
    assert parse_days("fri-mon") == [0, 4, 5, 6]
    assert parse_days("mon,wed-thu") == [0, 2, 3]
    assert parse_days("all") == list(range(7))
    with pytest.raises(ValueError):
        parse_days("funday")
