"""The truth mapping agrees with the events and never maps one value to two persons."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import phonenumbers

from cdp.events.validate import parse_object
from cdp.generate import JUNK_VALUES, KIOSK_IDS

from .conftest import Sample


def _pairs(ev: dict[str, Any]) -> list[tuple[str, str]]:
    pairs = parse_object(ev).identifier_pairs()
    if "previousId" in ev:
        pairs.append(("anonymous_id", ev["previousId"]))
    if "email" in ev.get("traits", {}):
        pairs.append(("email", ev["traits"]["email"]))
    return pairs


def test_truth_consistent_with_events(sample: Sample) -> None:
    truth = sample.gen.truth()
    seen: dict[str, set[str]] = defaultdict(set)
    for ev in sample.events:
        pid = sample.gen.event_person(ev["messageId"])
        for id_type, value in _pairs(ev):
            key = f"{id_type}:{value}"
            if value in JUNK_VALUES or value in KIOSK_IDS:
                assert key not in truth
                continue
            assert truth[key] == pid, key
            seen[key].add(pid)
    assert all(len(persons) == 1 for persons in seen.values())
    assert set(seen) == set(truth)


def test_truth_types_and_spelling_variants(sample: Sample) -> None:
    truth = sample.gen.truth()
    types = {key.split(":", 1)[0] for key in truth}
    assert types == {
        "anonymous_id", "user_id", "email", "phone", "loyalty_card", "device_id",
        "cookie_id", "pos_customer_id",
    }  # fmt: skip
    by_email: dict[str, set[str]] = defaultdict(set)
    for key, pid in truth.items():
        if key.startswith("email:"):
            by_email[key[6:].strip().lower()].add(pid)
    assert all(len(p) == 1 for p in by_email.values())
    phones = [k[6:] for k in truth if k.startswith("phone:")]
    assert any(p.startswith("+31 6 ") for p in phones)
    assert any(p.startswith("06-") for p in phones)
    assert any(p.startswith("0031") for p in phones)
    emails = [k[6:] for k in truth if k.startswith("email:")]
    assert any(e != e.strip() for e in emails) and any(e != e.lower() for e in emails)
    cards = [k[13:] for k in truth if k.startswith("loyalty_card:")]
    assert any(" " in c for c in cards) and any("-" in c for c in cards)


def test_persons_and_document(sample: Sample) -> None:
    doc = sample.gen.truth_document()
    assert set(doc) == {"identifiers", "events"}
    assert set(doc["events"]) == {ev["messageId"] for ev in sample.events}
    persons = set(doc["events"].values())
    assert sample.gen.stats.persons == len(persons) <= sample.gen.customers
    assert all(p.startswith("p") and len(p) == 7 for p in persons)
    assert sample.gen.stats.identifiers == len(doc["identifiers"])


def test_phone_numbers_are_valid_dutch_mobiles(sample: Sample) -> None:
    e164: dict[str, set[str]] = defaultdict(set)
    for key, pid in sample.gen.truth().items():
        if key.startswith("phone:"):
            number = phonenumbers.parse(key[6:], "NL")
            assert phonenumbers.is_valid_number(number), key
            e164[phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)].add(pid)
    assert e164 and all(len(p) == 1 for p in e164.values())
