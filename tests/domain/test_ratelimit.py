"""The sliding window agrees with a brute-force count over every window, in any arrival order."""

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from max_server.domain.ratelimit import fits

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
W = timedelta(seconds=60)


def brute_ok(times: list[datetime], limit: int) -> bool:
    """No window (b - W, b] holds more than ``limit`` (checking b at every second)."""
    if not times:
        return True
    lo, hi = min(times), max(times) + W
    b = lo
    while b <= hi:
        if sum(1 for t in times if b - W < t <= b) > limit:
            return False
        b += timedelta(seconds=1)
    return True


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 300), max_size=40), st.integers(1, 6))
def test_accepting_in_any_order_never_breaks_any_window(offsets: list[int], limit: int) -> None:
    accepted: list[datetime] = []
    for offset in offsets:
        at = T0 + timedelta(seconds=offset)
        if fits(accepted, at, W, limit):
            accepted.append(at)
            assert brute_ok(accepted, limit)
        else:
            assert not brute_ok([*accepted, at], limit)  # refusing was necessary


def test_the_boundary_burst() -> None:
    accepted = [T0 + timedelta(seconds=59)] * 20
    assert not fits(accepted, T0 + timedelta(seconds=61), W, 20)
    assert fits(accepted, T0 + timedelta(seconds=119), W, 20)
    assert not fits(accepted, T0, W, 20)  # an older message arriving late is judged the same way
