"""Phone normalisation (phonenumbers) and the Mexican/Argentine legacy mobile equivalence."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from max_server.domain.phones import digits_of, looks_like_phone, phone_match_keys, to_e164


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+52 55 1234 5678", "+525512345678"),
        ("525512345678", "+525512345678"),
        ("0052 55 1234 5678", "+525512345678"),
        ("+52 (55) 1234-5678", "+525512345678"),
        ("5215512345678", "+5215512345678"),  # WhatsApp's wa_id for a Mexican mobile: kept as given
        ("+54 9 11 2345 6789", "+5491123456789"),
        ("+54 11 2345 6789", "+541123456789"),
        ("14155550123", "+14155550123"),
        ("+1 (415) 555-0123", "+14155550123"),
        ("+44 20 7946 0958", "+442079460958"),
    ],
)
def test_written_forms_become_e164(raw: str, expected: str) -> None:
    assert to_e164(raw) == expected


def test_national_forms_need_a_region() -> None:
    assert to_e164("55 1234 5678", region="MX") == "+525512345678"
    assert to_e164("(415) 555-0123", region="US") == "+14155550123"


@pytest.mark.parametrize("raw", [None, "", "   ", "abc", "+12345", "+999 1234 5678", "12"])
def test_what_is_not_a_phone_is_none(raw: str | None) -> None:
    assert to_e164(raw) is None


def test_mexican_legacy_mobile_matches_the_current_form() -> None:
    assert phone_match_keys("+5215512345678") == {"+5215512345678", "+525512345678"}
    assert phone_match_keys("+525512345678") == {"+525512345678", "+5215512345678"}


def test_argentine_mobile_nine_matches_the_form_without_it() -> None:
    assert phone_match_keys("+5491123456789") == {"+5491123456789", "+541123456789"}
    assert phone_match_keys("+541123456789") == {"+541123456789", "+5491123456789"}


def test_other_countries_and_other_lengths_have_one_form() -> None:
    assert phone_match_keys("+14155550123") == {"+14155550123"}
    assert phone_match_keys("+52551234567") == {"+52551234567"}  # 9 national digits: no legacy form
    assert phone_match_keys(None) == set()
    assert phone_match_keys("") == set()


@given(st.sampled_from(["52", "54"]), st.integers(min_value=2_000_000_000, max_value=3_999_999_999))
def test_the_equivalence_is_symmetric(country: str, national: int) -> None:
    current = f"+{country}{national}"
    keys = phone_match_keys(current)
    assert len(keys) == 2
    for key in keys:
        assert phone_match_keys(key) == keys


def test_search_queries_that_look_like_phones() -> None:
    assert looks_like_phone("+52 55 1234 5678")
    assert looks_like_phone("(55) 1234-5678")
    assert not looks_like_phone("Juan López")
    assert not looks_like_phone("12345")
    assert not looks_like_phone("cust_123456")
    assert digits_of("+52 (55) 1234-5678") == "525512345678"
