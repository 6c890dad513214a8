"""Phone numbers in E.164 (``+525512345678``), as WhatsApp and people write them.

Parsing and validation come from ``phonenumbers`` (Google's libphonenumber metadata). Two legacy
mobile forms are still everywhere and must match their current forms:

* Mexico dropped the ``1`` after ``+52`` for mobiles in 2019, but WhatsApp still reports many
  Mexican numbers as ``521…`` (and that is the identity it sends from): ``+5215512345678`` and
  ``+525512345678`` are the same phone.
* Argentina writes mobiles internationally with a ``9`` after ``+54`` (``+5491123456789``) while
  many systems store them without it (``+541123456789``).

:func:`phone_match_keys` gives every form a number is known by, for search and link suggestions;
:func:`to_e164` keeps the form it was given (a WhatsApp identity must stay what WhatsApp sends).
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat

_NON_DIGITS = re.compile(r"\D+")
_PHONE_LIKE = re.compile(r"^\+?[\d\s().\-/]+$")
# country code -> the digit the legacy mobile form puts after it; both countries have
# 10-digit national numbers.
_LEGACY_MOBILE = {"52": "1", "54": "9"}
_NATIONAL_DIGITS = 10


def to_e164(raw: str | None, region: str | None = None) -> str | None:
    """``+52 55 1234 5678``, ``525512345678`` and ``0052 55 1234 5678`` all become
    ``+525512345678``; a national form (``55 1234 5678``) needs ``region`` (``"MX"``). None when
    empty or not a possible phone number. Legacy mobile forms (``+521…``, ``+549…``) are kept
    as given."""
    if not raw:
        return None
    value = raw.strip()
    digits = _NON_DIGITS.sub("", value)
    if not digits:
        return None
    if value.startswith("00"):
        value = "+" + digits[2:]
    elif not value.startswith("+") and region is None:
        value = "+" + digits  # WhatsApp's wa_id: international digits without the plus
    try:
        number = phonenumbers.parse(value, region)
    except NumberParseException:
        return None
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    if phonenumbers.is_possible_number(number):
        return e164
    for key in phone_match_keys(e164) - {e164}:
        if _possible(key):
            return e164  # a legacy mobile form of a real number
    return None


def _possible(e164: str) -> bool:
    try:
        return phonenumbers.is_possible_number(phonenumbers.parse(e164, None))
    except NumberParseException:
        return False


def phone_match_keys(e164: str | None) -> set[str]:
    """Every E.164 form of the same phone: itself, plus the current form of a legacy Mexican
    (``+521``) or Argentine (``+549``) mobile, or the legacy form of a current one."""
    if not e164:
        return set()
    digits = _NON_DIGITS.sub("", e164)
    if not digits:
        return set()
    keys = {"+" + digits}
    for country, mobile in _LEGACY_MOBILE.items():
        legacy = country + mobile
        if digits.startswith(legacy) and len(digits) == len(legacy) + _NATIONAL_DIGITS:
            keys.add("+" + country + digits[len(legacy) :])
        elif digits.startswith(country) and len(digits) == len(country) + _NATIONAL_DIGITS:
            keys.add("+" + legacy + digits[len(country) :])
    return keys


def looks_like_phone(text: str) -> bool:
    """Is a search query a phone number (digits with the usual separators, at least 6 digits)?"""
    value = text.strip()
    return bool(_PHONE_LIKE.match(value)) and len(_NON_DIGITS.sub("", value)) >= 6


def digits_of(text: str) -> str:
    return _NON_DIGITS.sub("", text)
