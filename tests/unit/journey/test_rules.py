"""Rules loading and validation: the default file, and every kind of bad entry."""

from __future__ import annotations

import copy
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from cdp.errors import ConfigError
from cdp.journey import DEFAULT_PATH, JourneyRules, Summary
from tests.unit.journey.events import at, ev

BASE: dict[str, Any] = yaml.safe_load(DEFAULT_PATH.read_text())


def test_default_rules() -> None:
    rules = JourneyRules.load()
    assert rules == JourneyRules.default()
    assert rules.stuck_after == timedelta(days=14)
    assert rules.lapsed_after == timedelta(days=90)
    stages = {s.stage for s in rules.signals}
    assert stages == {"awareness", "consideration", "decision", "service", "loyalty"}
    by_name = {e: {s.stage for s in sigs} for e, sigs in rules.by_event.items()}
    assert by_name["Order Completed"] == {"decision"}
    assert by_name["Store Visited"] == {"consideration"}
    assert by_name["Loyalty Card Registered"] == {"loyalty"}
    assert by_name["Appointment Booked"] == {"service"}


def _error(data: Any, tmp_path: Path) -> str:
    path = tmp_path / "journey.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    with pytest.raises(ConfigError) as err:
        JourneyRules.load(path)
    assert str(path) in str(err.value)
    return str(err.value)


def _with_signal(**over: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data["signals"][4].update(over)
    return data


@pytest.mark.parametrize(
    ("over", "expected"),
    [
        ({"stage": "purchase"}, "stage: Input should be 'awareness'"),
        ({"events": []}, "events: List should have at least 1 item"),
        ({"events": "Cart Viewed"}, "events: Input should be a valid list"),
        ({"channels": ["tv"]}, "channels.0: Input should be 'web'"),
        ({"where": {"coupon": {"in": []}}}, "where: coupon: expected a value or {in:"),
        ({"where": {"coupon": {"eq": 1}}}, "where: coupon: expected a value or {in:"),
        ({"where": {"coupon": [1, 2]}}, "where: coupon: expected a value or {in:"),
        ({"evnts": ["Cart Viewed"]}, "evnts: Extra inputs are not permitted"),
        ({"name": ""}, "name: String should have at least 1 character"),
    ],
)
def test_bad_signal_names_the_entry(over: dict[str, Any], expected: str, tmp_path: Path) -> None:
    msg = _error(_with_signal(**over), tmp_path)
    assert "signals[4]" in msg
    if over.get("name") != "":
        assert "'cart_activity'" in msg
    assert expected in msg


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("stuck_after_days", 0, "stuck_after_days: Input should be greater than 0"),
        ("stuck_after_days", -3, "stuck_after_days: Input should be greater than 0"),
        ("lapsed_after_days", "ninety", "lapsed_after_days: Input should be a valid number"),
        ("lapsed_after_days", True, "lapsed_after_days: Input should be a valid number"),
        ("lapsed_after_days", 100_000, "lapsed_after_days: Input should be less than"),
        ("version", 2, "version: Input should be 1"),
        ("signals", [], "signals: List should have at least 1 item"),
        ("purchase_events", [], "purchase_events: List should have at least 1 item"),
        ("colour", "red", "colour: Extra inputs are not permitted"),
    ],
)
def test_bad_top_level(key: str, value: Any, expected: str, tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data[key] = value
    assert expected in _error(data, tmp_path)


def test_duplicate_signal_name(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data["signals"].append(dict(data["signals"][0]))
    msg = _error(data, tmp_path)
    assert f"signals[{len(data['signals']) - 1}] ('ad_click'): duplicate" in msg


def test_overlapping_event_lists(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data["cart_add_events"] = ["Product Added", "Order Completed"]
    assert "purchase_events and cart_add_events both list ['Order Completed']" in _error(
        data, tmp_path
    )


def test_not_yaml_not_mapping_missing(tmp_path: Path) -> None:
    assert "invalid YAML" in _error("signals: [\n", tmp_path)
    assert "must be a mapping" in _error("- a\n- b\n", tmp_path)
    with pytest.raises(ConfigError, match="cannot read"):
        JourneyRules.load(tmp_path / "nope.yaml")


def test_channel_and_where_filters() -> None:
    data = copy.deepcopy(BASE)
    data["signals"].append(
        {
            "name": "big_store_order",
            "stage": "decision",
            "events": ["Order Completed"],
            "channels": ["store"],
            "where": {"payment": {"in": ["card", "cash"]}, "gift": False},
        }
    )
    rules = JourneyRules.from_dict(data)

    def signals(channel: str, **props: Any) -> set[str]:
        e = ev("m", channel, "Order Completed", at(), **props)
        return set(Summary.from_event(e, rules).signals)

    assert signals("store", payment="card", gift=False) == {"purchase", "big_store_order"}
    assert signals("web", payment="card", gift=False) == {"purchase"}
    assert signals("store", payment="voucher", gift=False) == {"purchase"}
    assert signals("store", payment="cash") == {"purchase"}  # missing gift reads as None
