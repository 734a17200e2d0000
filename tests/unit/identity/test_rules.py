"""Merge rules: the shipped YAML, validation, and which identifiers may link."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from cdp.errors import ConfigError
from cdp.identity import MergeRules, observation_from_event, usable_nodes

from .helpers import HASHER, REGION, event, node


def test_shipped_yaml_equals_defaults() -> None:
    rules = MergeRules.load()
    assert rules == MergeRules()
    assert rules.limit("user_id") == 1
    assert rules.limit("email") == 5
    assert rules.limit("device_id") == 50
    assert rules.limit("something_else") == 100
    assert not rules.links("device_id", "store")
    assert rules.links("device_id", "app")


def test_partial_file_keeps_other_defaults(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("limits:\n  email: 2\n  other: 7\nnon_linking: {}\n")
    rules = MergeRules.load(path)
    assert rules.limit("email") == 2
    assert rules.limit("crm_id") == 7
    assert rules.limit("user_id") == 1  # limits override the defaults key by key
    assert rules.links("device_id", "store")
    assert rules.is_blocked("null")


@pytest.mark.parametrize(
    "text",
    [
        "- just a list\n",
        "limits: {email: 0}\n",
        "limits: {email: two}\n",
        "limits: {email: true}\n",
        "limits: [1]\n",
        "blocked_exact: null-ish\n",
        "blocked_exact: [1, 2]\n",
        "blocked_regex: ['(unclosed']\n",
        "non_linking: {device_id: [moon]}\n",
        "non_linking: {device_id: store}\n",
        "limit: {email: 1}\n",
        "limits: {email: [\n",
    ],
)
def test_bad_files_raise_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"rules"):
        MergeRules.load(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        MergeRules.load(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    "value",
    ["", "  ", "null", "NULL", " None ", "undefined", "0", "0000", "----", "XXXX", "n/a", "-"],
)
def test_blocked_values(value: str) -> None:
    assert MergeRules().is_blocked(value)


@pytest.mark.parametrize("value", ["anna@example.nl", "U-42", "+31612345678", "1234", "nullable"])
def test_real_values_not_blocked(value: str) -> None:
    assert not MergeRules().is_blocked(value)


def test_usable_nodes_drops_with_reasons() -> None:
    ev = event(
        channel="store",
        anonymousId="null",
        userId="U-1",
        identifiers={
            "email": "Test@Example.com ",  # blocked after normalization
            "phone": "12",  # malformed
            "loyalty_card": "0000-0000",  # blocked after normalization
            "device_id": "kiosk-7",  # non-linking on store
            "pos_customer_id": "77",
        },
    )
    nodes, dropped = usable_nodes(ev, MergeRules(), HASHER, REGION)
    assert sorted(nodes) == sorted([node("user_id", "U-1"), node("pos_customer_id", "77")])
    assert dropped == Counter({"blocked": 3, "malformed": 1, "non_linking": 1})


def test_usable_nodes_normalizes_before_hashing() -> None:
    a, _ = usable_nodes(event(identifiers={"email": " ANNA@x.nl"}), MergeRules(), HASHER, REGION)
    b, _ = usable_nodes(event(identifiers={"email": "anna@X.NL"}), MergeRules(), HASHER, REGION)
    assert a == b == [node("email", "anna@x.nl")]


def test_usable_nodes_dedupes_same_identifier() -> None:
    ev = event(userId="U-1", identifiers={"user_id": " U-1 "})
    nodes, dropped = usable_nodes(ev, MergeRules(), HASHER, REGION)
    assert nodes == [node("user_id", "U-1")]
    assert not dropped


def test_observation_counts_drops_including_alias() -> None:
    dropped: Counter[str] = Counter()
    ev = event(type="alias", userId="U-1", previousId="undefined", anonymousId="")
    o = observation_from_event(ev, MergeRules(), HASHER, REGION, dropped)
    assert o.nodes == (node("user_id", "U-1"),)
    assert o.alias_previous is None
    assert dropped == Counter({"blocked": 2})


def test_identify_traits_count_as_identifiers() -> None:
    ev = event(type="identify", userId="U-1", traits={"email": "Anna@X.nl", "phone": 612})
    nodes, dropped = usable_nodes(ev, MergeRules(), HASHER, REGION)
    assert sorted(nodes) == sorted([node("user_id", "U-1"), node("email", "anna@x.nl")])
    assert not dropped
