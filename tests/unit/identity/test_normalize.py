"""Normalization: one spelling per identifier, None for unusable values."""

from __future__ import annotations

import pytest

from cdp.identity import normalize


@pytest.mark.parametrize(
    ("id_type", "raw", "expected"),
    [
        ("email", "  Anna.Jansen@Example.NL ", "anna.jansen@example.nl"),
        ("email", "ANNA@EXAMPLE.NL", "anna@example.nl"),
        ("email", "anna@example", None),
        ("email", "anna example.nl", None),
        ("email", "an na@example.nl", None),
        ("email", "a@@example.nl", None),
        ("email", "@example.nl", None),
        ("email", "", None),
        ("phone", "+31 6 1234 5678", "+31612345678"),
        ("phone", "06-12345678", "+31612345678"),
        ("phone", "0031 6 12345678", "+31612345678"),
        ("phone", "(06) 1234 5678", "+31612345678"),
        ("phone", "+44 20 7946 0958", "+442079460958"),
        ("phone", "12", None),
        ("phone", "not a phone", None),
        ("phone", "", None),
        ("phone", "+31 6 1234", None),
        ("loyalty_card", "1234 5678-9012", "123456789012"),
        ("loyalty_card", " 0012 ", "0012"),
        ("loyalty_card", "--", None),
        ("loyalty_card", "AB-1234", None),
        ("pos_customer_id", "98-76", "9876"),
        ("pos_customer_id", "", None),
        ("pos_customer_id", "c-4105 158", "C4105158"),
        ("pos_customer_id", "C4105/158", None),
        ("user_id", "  U-42 ", "U-42"),
        ("anonymous_id", "   ", None),
        ("device_id", "Dev-ABC", "Dev-ABC"),
        ("cookie_id", "c1", "c1"),
        ("crm_id", " X ", "X"),
        ("crm_id", "", None),
    ],
)
def test_normalize(id_type: str, raw: str, expected: str | None) -> None:
    assert normalize(id_type, raw, "NL") == expected


def test_phone_region_matters() -> None:
    assert normalize("phone", "020 794 6095", "NL") == "+31207946095"
    assert normalize("phone", "030 1234567", "DE") == "+49301234567"
    # International numbers ignore the default region.
    assert normalize("phone", "+31612345678", "US") == "+31612345678"


def test_invalid_region_is_unusable_not_an_error() -> None:
    assert normalize("phone", "0612345678", "") is None
    assert normalize("phone", "0612345678", "ZZ") is None
