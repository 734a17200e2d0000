"""Action rules: the default file loads; bad entries are ConfigErrors naming them."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from cdp.activation.rules import DEFAULT_PATH, ActionRules, QuietHours, parse_duration
from cdp.errors import ConfigError


def base() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(DEFAULT_PATH.read_text())
    return data


def test_default_rules_load() -> None:
    rules = ActionRules.load()
    cart = rules.by_name["abandoned_cart"]
    assert cart.wait == timedelta(hours=1) and cart.unless_event == "Order Completed"
    assert cart.identified and cart.consent and cart.quiet_hours
    assert cart.cap is not None and cart.cap.per == timedelta(hours=24)
    assert rules.by_transition["lapsed"][0].action == "winback_message"
    assert not rules.by_name["sales_rep_appointment"].quiet_hours
    assert rules.consent_when_absent is True
    assert rules.cancel_events == {"Order Completed"}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["rules"][0].update(wait="soon"), "rules[0] ('abandoned_cart'): wait"),
        (lambda d: d["rules"][1].update(trigger={}), "rules[1] ('sales_rep_appointment')"),
        (lambda d: d["rules"][2].update(colour="red"), "rules[2] ('winback'): colour"),
        (lambda d: d["rules"].append(copy.deepcopy(d["rules"][0])), "duplicate rule name"),
        (lambda d: d["rules"][0].update(destinations=["nowhere"]), "unknown 'nowhere'"),
        (lambda d: d["rules"][0].update(frequency_cap={"max": 0, "per": "1h"}), "frequency_cap"),
        (lambda d: d["defaults"]["quiet_hours"].update(timezone="Mars/Base"), "Mars/Base"),
        (
            lambda d: d["destinations"].update(hook={"type": "webhook", "url": "ftp://x"}),
            "destinations.hook",
        ),
        (
            lambda d: d["destinations"].update(hook={"type": "webhook", "url": "http://x"}),
            "secret_env",
        ),
        (lambda d: d.update(rules=[]), "rules"),
    ],
)
def test_bad_entries_are_named(mutate: Any, message: str) -> None:
    data = base()
    mutate(data)
    with pytest.raises(ConfigError) as err:
        ActionRules.from_dict(data, source="actions.yaml")
    assert message in str(err.value)
    assert str(err.value).startswith("actions.yaml: ")


def test_not_a_mapping() -> None:
    with pytest.raises(ConfigError):
        ActionRules.from_dict([1, 2])


def test_env_selects_the_file(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    data = base()
    data["defaults"]["lateness"] = "2h"
    path = tmp_path / "a.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("CDP_ACTIONS_RULES", str(path))
    assert ActionRules.load().lateness == timedelta(hours=2)


def test_durations() -> None:
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("1.5h") == timedelta(minutes=90)
    assert parse_duration(30) == timedelta(seconds=30)
    for bad in ("1 week", "-1h", True, None):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_quiet_hours_wrap_midnight_and_defer_to_the_end() -> None:
    q = QuietHours(21, 8, "UTC")
    night = datetime(2026, 3, 1, 22, 30, tzinfo=UTC)
    early = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
    day = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    assert q.contains(night) and q.contains(early) and not q.contains(day)
    assert q.defer(night) == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    assert q.defer(early) == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    assert q.defer(day) == day
    ams = QuietHours(22, 7, "Europe/Amsterdam")  # UTC+1 in March before the DST switch
    assert ams.defer(datetime(2026, 3, 1, 22, 0, tzinfo=UTC)) == datetime(
        2026, 3, 2, 6, 0, tzinfo=UTC
    )
    assert not QuietHours(8, 8).contains(night)
