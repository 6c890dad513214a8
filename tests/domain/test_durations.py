import pytest
from hypothesis import given
from hypothesis import strategies as st

from max_server.domain.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("3m", 180),
        ("1h30m", 5400),
        ("2d", 172800),
        ("1w", 604800),
        ("45", 45),
        (" 1H 5S ", 3605),
        (0, 0),
    ],
)
def test_parse(text: str | int, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "5x", "1h1h", "m5", "-3m", "1.5h", True])
def test_parse_refuses(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)  # type: ignore[arg-type]


@given(st.integers(min_value=0, max_value=10**8))
def test_format_round_trips(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


def test_format() -> None:
    assert format_duration(5400) == "1h30m"
    assert format_duration(0) == "0s"
    assert format_duration(-61) == "-1m1s"
