"""The pure activation core: decisions are a function of the set of events and the
watermark (never their order), timers fire exactly once, caps and consent hold."""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cdp.activation.engine import (
    CANCELLED,
    FIRED,
    FREQUENCY_CAP,
    NO_CONSENT,
    NOT_IDENTIFIED,
    Decision,
    Profile,
    action_id,
    combined_watermark,
    evaluate,
    marketing_consent,
    preferred_channel,
    profile_of_event,
    reference,
    triggers_of_event,
)
from cdp.activation.rules import ActionRules
from cdp.events import Event

RULES = ActionRules.load()
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def ev(mid: str, event: str, minutes: float, consent: bool | None = None,
       email: bool = False, channel: str = "web") -> Event:  # fmt: skip
    doc: dict[str, Any] = {
        "messageId": mid, "type": "track", "event": event, "channel": channel,
        "timestamp": (T0 + timedelta(minutes=minutes)).isoformat(), "anonymousId": "a",
    }  # fmt: skip
    if email:
        doc["identifiers"] = {"email": "ann@example.nl"}
    if consent is not None:
        doc["context"] = {"consent": {"categoryPreferences": {"marketing": consent}}}
    return Event.model_validate(doc)


def outcomes(decisions: list[Decision]) -> dict[str, str]:
    return {d.trigger_message_id: d.outcome for d in decisions}


def test_abandoned_cart_timer() -> None:
    events = [ev("i", "Signed In", 0, consent=True, email=True), ev("add", "Product Added", 5)]
    wm_early = T0 + timedelta(minutes=64)
    assert reference({"c": events}, wm_early, RULES) == []  # not due yet
    [d] = reference({"c": events}, T0 + timedelta(minutes=65), RULES)
    assert d.outcome == FIRED and d.action == "send_offer_email"
    assert d.action_id == action_id("abandoned_cart", "add")
    assert d.due_at == T0 + timedelta(minutes=65) and not d.deferred


def test_purchase_within_the_hour_cancels_after_does_not() -> None:
    base = [ev("i", "Signed In", 0, consent=True, email=True), ev("add", "Product Added", 5)]
    wm = T0 + timedelta(days=1)
    bought = [*base, ev("o", "Order Completed", 65)]  # exactly t + 1h: inside (t, t+1h]
    assert outcomes(reference({"c": bought}, wm, RULES)) == {"add": CANCELLED}
    later = [*base, ev("o", "Order Completed", 66)]
    assert outcomes(reference({"c": later}, wm, RULES)) == {"add": FIRED}
    before = [*base, ev("o", "Order Completed", 5)]  # same time as the add: not after it
    assert outcomes(reference({"c": before}, wm, RULES)) == {"add": FIRED}


def test_conditions() -> None:
    wm = T0 + timedelta(days=1)
    anon = [ev("add", "Product Added", 5, consent=True)]
    assert outcomes(reference({"c": anon}, wm, RULES)) == {"add": NOT_IDENTIFIED}
    identified_late = [*anon, ev("i", "Signed In", 120, email=True)]  # after the due time
    assert outcomes(reference({"c": identified_late}, wm, RULES)) == {"add": NOT_IDENTIFIED}
    no = [ev("i", "Signed In", 0, consent=False, email=True), ev("add", "Product Added", 5)]
    assert outcomes(reference({"c": no}, wm, RULES)) == {"add": NO_CONSENT}
    # the latest stated preference wins: an opt-out after the trigger stops the offer
    revoked = [*no[:1], ev("add", "Product Added", 5, consent=True), ev("x", "Page", 30, False)]
    assert outcomes(reference({"c": revoked}, wm, RULES)) == {"add": NO_CONSENT}
    absent = [ev("i", "Signed In", 0, email=True), ev("add", "Product Added", 5)]
    assert outcomes(reference({"c": absent}, wm, RULES)) == {"add": FIRED}
    deny = ActionRules(RULES.rules, RULES.destinations, consent_when_absent=False)
    assert outcomes(reference({"c": absent}, wm, deny)) == {"add": NO_CONSENT}


def test_quiet_hours_defer_to_their_end() -> None:
    # added 20:30 → due 21:30, inside 21-08 → deferred to 08:00 next day
    events = [ev("i", "Signed In", 0, consent=True, email=True), ev("add", "Product Added", 690)]
    assert reference({"c": events}, T0 + timedelta(hours=22, minutes=59), RULES) == []
    [d] = reference({"c": events}, T0 + timedelta(hours=23), RULES)
    assert d.deferred and d.due_at == datetime(2026, 3, 3, 8, tzinfo=UTC)
    # a purchase during the night cancels the deferred offer
    night = [*events, ev("o", "Order Completed", 900)]
    assert outcomes(reference({"c": night}, T0 + timedelta(days=2), RULES)) == {"add": CANCELLED}


def test_frequency_cap_and_sales_rep() -> None:
    events = [
        ev("i", "Signed In", 0, consent=True, email=True),
        ev("a1", "Product Added", 5),
        ev("a2", "Product Added", 300),  # 5 h later: capped
        ev("a3", "Product Added", 25 * 60),  # next day: fires
        ev("b", "Appointment Booked", 10, channel="service"),
    ]
    got = outcomes(reference({"c": events}, T0 + timedelta(days=3), RULES))
    assert got == {"a1": FIRED, "a2": FREQUENCY_CAP, "a3": FIRED, "b": FIRED}


def test_consent_shapes_and_preferred_channel() -> None:
    assert marketing_consent({"consent": {"categoryPreferences": {"marketing": False}}}) is False
    assert marketing_consent({"consent": {"marketing": True}}) is True
    assert marketing_consent({"consent": {"analytics": True}}) is None
    assert marketing_consent({}) is None
    t = {"web": T0, "store": T0 + timedelta(hours=1)}
    assert preferred_channel({"web": 3, "store": 3, "app": 1}, t) == "store"
    assert preferred_channel({"web": 4, "store": 3}, t) == "web"
    assert preferred_channel({}, t) is None


# -- properties ---------------------------------------------------------------------

EVENT_NAMES = ("Product Added", "Order Completed", "Page Viewed", "Appointment Booked")


@st.composite
def histories(draw: Any) -> tuple[dict[str, list[Event]], datetime]:
    customers: dict[str, list[Event]] = {}
    n = 0
    for c in range(draw(st.integers(1, 3))):
        evs = []
        for _ in range(draw(st.integers(0, 12))):
            n += 1
            evs.append(
                ev(
                    f"m{n}",
                    draw(st.sampled_from(EVENT_NAMES)),
                    draw(st.integers(0, 3 * 24 * 60)),
                    consent=draw(st.sampled_from((None, None, True, False))),
                    email=draw(st.booleans()),
                    channel=draw(st.sampled_from(("web", "app", "store", "service"))),
                )
            )
        customers[f"c{c}"] = evs
    wm = T0 + timedelta(minutes=draw(st.integers(0, 5 * 24 * 60)))
    return customers, wm


@settings(max_examples=150, deadline=None)
@given(histories(), st.randoms(use_true_random=False))
def test_decisions_depend_on_the_set_not_the_order(h: Any, rnd: random.Random) -> None:
    customers, wm = h
    expected = reference(customers, wm, RULES)
    shuffled = {}
    for cid in rnd.sample(sorted(customers), len(customers)):
        evs = list(customers[cid])
        rnd.shuffle(evs)
        shuffled[cid] = evs + evs[: len(evs) // 2]  # with duplicates
    assert sorted(reference(shuffled, wm, RULES), key=lambda d: d.action_id) == sorted(
        expected, key=lambda d: d.action_id
    )


@settings(max_examples=150, deadline=None)
@given(histories(), st.lists(st.integers(0, 5 * 24 * 60), max_size=6))
def test_streaming_watermarks_decide_each_trigger_once_as_the_batch(
    h: Any, steps: list[int]
) -> None:
    """Deciding at increasing watermarks (with the fired history carried over, as the
    processor does) gives the same decisions as one evaluation at the last watermark."""
    customers, wm = h
    profiles: dict[str, Profile] = {}
    triggers = []
    for cid, evs in customers.items():
        p = Profile()
        for e in evs:
            p = Profile.combine(p, profile_of_event(e, RULES, lambda x: bool(x.identifiers.email)))
            triggers += triggers_of_event(cid, e, RULES)
        profiles[cid] = p
    batch = evaluate(triggers, profiles, wm, RULES)
    pending = {t.action_id: t for t in triggers}
    fired: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    streamed: list[Decision] = []
    for minute in [*sorted(s for s in steps if T0 + timedelta(minutes=s) < wm), None]:
        mark = wm if minute is None else T0 + timedelta(minutes=minute)
        for d in evaluate(pending.values(), profiles, mark, RULES, fired):
            pending.pop(d.action_id)
            streamed.append(d)
            if d.outcome == FIRED:
                fired[(d.customer_id, d.action)].append(d.due_at)
    assert sorted(streamed, key=lambda d: d.action_id) == sorted(batch, key=lambda d: d.action_id)


@settings(max_examples=150, deadline=None)
@given(histories())
def test_invariants(h: Any) -> None:
    customers, wm = h
    decisions = reference(customers, wm, RULES)
    assert len({d.action_id for d in decisions}) == len(decisions)  # one per trigger
    by_mid = {e.messageId: e for evs in customers.values() for e in evs}
    fired: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for d in decisions:
        assert d.due_at <= wm
        if d.outcome != FIRED:
            continue
        fired[(d.customer_id, d.action)].append(d.due_at)
        if d.rule == "abandoned_cart":
            evs = customers[d.customer_id]
            end = max(d.trigger_at + timedelta(hours=1), d.due_at)
            assert not any(
                e.event == "Order Completed" and d.trigger_at < e.timestamp <= end for e in evs
            )
            stated = [
                (e.timestamp, e.messageId, c)
                for e in evs
                if (c := marketing_consent(e.context)) is not None
            ]
            assert not stated or max(stated)[2] is True
            assert any(e.identifiers.email and e.timestamp <= d.due_at for e in evs)
        assert by_mid[d.trigger_message_id].timestamp == d.trigger_at
    caps = {r.action: r.cap for r in RULES.rules}
    for (_, action), times in fired.items():
        cap = caps[action]
        if cap is None:
            continue
        times.sort()
        assert all(b - a >= cap.per for a, b in itertools.pairwise(times))


def test_watermark_waits_for_the_slowest_active_partition() -> None:
    hour = timedelta(hours=1)
    assert combined_watermark([], hour) is None
    # partition 1 is 30 min behind partition 0: its unread purchase may still cancel
    assert combined_watermark([T0, T0 - hour / 2], hour) == T0 - hour / 2
    # a partition more than `idle` behind the front is idle and holds nothing back
    assert combined_watermark([T0, T0 - hour / 2, T0 - 3 * hour], hour) == T0 - hour / 2


@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=12), st.integers(0, 5_000))
def test_watermark_bounds(minutes: list[int], idle: int) -> None:
    times = [T0 + timedelta(minutes=m) for m in minutes]
    wm = combined_watermark(times, timedelta(minutes=idle))
    assert wm is not None
    assert max(times) - timedelta(minutes=idle) <= wm <= max(times)
    assert wm in times
