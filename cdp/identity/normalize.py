"""Identifier normalization: one canonical spelling per real-world identifier.

``None`` means the value is unusable (malformed) and must link nothing. Blocked
values (``"null"``, ``"0000"``...) are judged separately by :class:`MergeRules`.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers

# local@domain.tld: no whitespace or second "@", at least one dot in the domain and a
# top-level label of two or more characters.
_EMAIL = re.compile(r"[^@\s]+@(?:[^@\s.]+\.)+[^@\s.]{2,}")
# Separators people type inside card numbers; anything else that is not a digit
# makes the value malformed (we never guess digits out of free text).
_NUMBER_SEPARATORS = re.compile(r"[\s\-]+")
_ASCII_DIGITS = re.compile(r"[0-9]+")

NUMERIC_TYPES = frozenset({"loyalty_card"})
# Till systems print customer numbers with a letter prefix ("C4105158"): keep letters
# and digits, drop separators, compare case-insensitively.
_ALNUM = re.compile(r"[0-9A-Z]+")


def _email(raw: str) -> str | None:
    value = raw.strip().lower()
    return value if _EMAIL.fullmatch(value) else None


def _phone(raw: str, default_region: str) -> str | None:
    try:
        number = phonenumbers.parse(raw.strip(), default_region or None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def _alnum(raw: str) -> str | None:
    value = _NUMBER_SEPARATORS.sub("", raw).upper()
    return value if _ALNUM.fullmatch(value) else None


def _digits(raw: str) -> str | None:
    value = _NUMBER_SEPARATORS.sub("", raw)
    return value if _ASCII_DIGITS.fullmatch(value) else None


# Cached because phonenumbers costs tens of microseconds per call and the same
# identifiers recur constantly in a stream.
@lru_cache(maxsize=1 << 18)
def normalize(id_type: str, raw: str, default_region: str) -> str | None:
    """The canonical form of ``raw`` for ``id_type``, or ``None`` when unusable.

    * ``email``: stripped, lower-cased, must look like ``local@domain.tld``.
    * ``phone``: E.164 (``+31612345678``); national numbers use ``default_region``.
    * ``loyalty_card``: digits with spaces/dashes removed.
    * ``pos_customer_id``: letters and digits, separators removed, upper-cased.
    * anything else (``user_id``, ``anonymous_id``, ``device_id``, ``cookie_id``,
      unknown types): stripped; case is kept because these ids are opaque.
    """
    if id_type == "email":
        return _email(raw)
    if id_type == "phone":
        return _phone(raw, default_region)
    if id_type in NUMERIC_TYPES:
        return _digits(raw)
    if id_type == "pos_customer_id":
        return _alnum(raw)
    value = raw.strip()
    return value or None
