"""Order independence: the summary (and so the stage) is a function of the event set.

Also checks stage_of against an oracle written straight from the documented definition
over the full event list, and the cart against its definition.
"""

from __future__ import annotations

import random
from datetime import UTC, timedelta, timezone
from typing import Any

import orjson
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cdp.events.envelope import CHANNELS, Event
from cdp.journey import STAGE_RANK, JourneyRules, StageState, Summary, event_label, stage_of
from cdp.journey.rules import KEEP_POST_PURCHASE
from cdp.journey.summary import from_micros, to_micros
from tests.unit.journey.events import T0

RULES = JourneyRules.default()
NAMES = sorted({n for s in RULES.signals for n in s.events} | {"Product Removed", "Signed In"})
KINDS = [*NAMES, "<identify>", "<page>"]
ZONES = [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))]

FAST = settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Few purchases, many service/loyalty signals: exercises the post-purchase gating.
AFTER_SALES = [
    "Order Completed",
    "Support Ticket Opened",
    "Order Refunded",
    "Appointment Booked",
    "Loyalty Points Redeemed",
    "Product Viewed",
    "<page>",
]


def _record(kinds: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "kind": st.sampled_from(kinds),
            "channel": st.sampled_from(CHANNELS),
            "hour": st.integers(0, 80),  # small range: plenty of equal times
            "zone": st.sampled_from(ZONES),
            "product": st.sampled_from(["p1", "p2", "p3"]),
            "price": st.sampled_from([None, 1.0, 2.5, 10.0]),
            "quantity": st.sampled_from([1, 2, 3]),
            "revenue": st.sampled_from([None, 10.0, 3.3, "4.40"]),
        }
    )


def _event(mid: str, r: dict[str, Any]) -> Event:
    ts = (T0 + timedelta(hours=r["hour"])).astimezone(r["zone"])
    if r["kind"] == "<identify>":
        return Event(messageId=mid, type="identify", channel=r["channel"], timestamp=ts, userId="u")
    if r["kind"] == "<page>":
        return Event(messageId=mid, type="page", channel=r["channel"], timestamp=ts)
    props = {k: r[k] for k in ("price", "quantity", "revenue") if r[k] is not None}
    props["product_id"] = r["product"]
    return Event(
        messageId=mid,
        type="track",
        channel=r["channel"],
        event=r["kind"],
        timestamp=ts,
        properties=props,
    )


@st.composite
def customer(draw: st.DrawFn, max_size: int = 20, kinds: list[str] = KINDS) -> list[Event]:
    records = draw(st.lists(_record(kinds), max_size=max_size))
    mids = draw(
        st.lists(
            st.text("abxyz0", min_size=1, max_size=4),
            min_size=len(records),
            max_size=len(records),
            unique=True,
        )
    )
    return [_event(m, r) for m, r in zip(mids, records, strict=True)]


def fold(events: list[Event]) -> Summary:
    s = Summary()
    for e in events:
        s = Summary.combine(s, Summary.from_event(e, RULES))
    return s


@FAST
@given(customer(), st.randoms(use_true_random=False))
def test_any_permutation_gives_the_same_summary_and_stage(
    events: list[Event], rnd: random.Random
) -> None:
    ordered = sorted(events, key=lambda e: (e.timestamp, e.messageId))
    shuffled = list(events)
    rnd.shuffle(shuffled)
    a, b = fold(ordered), fold(shuffled)
    assert a == b
    if events:
        assert stage_of(a, RULES) == stage_of(b, RULES)
        assert a.cart() == b.cart() and a.cart_value() == b.cart_value()


@FAST
@given(customer(8), customer(8), customer(8))
def test_combine_is_commutative_and_associative(
    x: list[Event], y: list[Event], z: list[Event]
) -> None:
    a, b, c = fold(x), fold(y), fold(z)
    assert Summary.combine(a, b) == Summary.combine(b, a)
    assert Summary.combine(Summary.combine(a, b), c) == Summary.combine(a, Summary.combine(b, c))
    assert Summary.combine(a, Summary()) == a == Summary.combine(Summary(), a)


@FAST
@given(customer(), st.data())
def test_split_summarise_combine_equals_summarise_all(events: list[Event], data: Any) -> None:
    mask = data.draw(st.lists(st.booleans(), min_size=len(events), max_size=len(events)))
    left = [e for e, m in zip(events, mask, strict=True) if m]
    right = [e for e, m in zip(events, mask, strict=True) if not m]
    assert Summary.combine(fold(left), fold(right)) == fold(events)


@FAST
@given(customer())
def test_json_round_trip(events: list[Event]) -> None:
    s = fold(events)
    assert Summary.from_json(s.to_json()) == s
    wire = orjson.loads(orjson.dumps(s.to_json()))  # as stored in / read from JSONB
    assert Summary.from_json(wire) == s and Summary.from_json(wire).to_json() == s.to_json()


@FAST
@given(customer(12), customer(12))
def test_adding_events_never_lowers_the_stage(x: list[Event], y: list[Event]) -> None:
    assume(x)
    before = stage_of(fold(x), RULES)
    after = stage_of(fold(x + y), RULES)
    assert STAGE_RANK[after.stage] >= STAGE_RANK[before.stage]
    if after.stage == before.stage:
        assert (after.since, after.message_id) <= (before.since, before.message_id)


@FAST
@given(customer(), st.data())
def test_duplicates_change_nothing_but_counters(events: list[Event], data: Any) -> None:
    assume(events)
    dup = data.draw(st.sampled_from(events))
    s = fold(events)
    twice = Summary.combine(s, Summary.from_event(dup, RULES))
    assert stage_of(twice, RULES) == stage_of(s, RULES)
    assert twice.cart() == s.cart() and twice.channels == s.channels
    assert (twice.first, twice.last, twice.touch) == (s.first, s.last, s.touch)
    for name, st_ in s.signals.items():
        assert (twice.signals[name].earliest, twice.signals[name].latest) == (
            st_.earliest,
            st_.latest,
        )


# -- the oracle: the documented definitions over the whole event list --------------------


def _points(events: list[Event], stage: str) -> list[tuple[int, str]]:
    out = []
    for e in events:
        label = event_label(e)
        sigs = RULES.by_event.get(label or "", ())
        if any(s.stage == stage and s.matches(e.channel.value, e.properties) for s in sigs):
            out.append((to_micros(e.timestamp), e.messageId))
    return sorted(out)


def oracle_stage(events: list[Event]) -> StageState:
    purchases = sorted(
        (to_micros(e.timestamp), e.messageId)
        for e in events
        if event_label(e) in RULES.purchase_events
    )
    candidates: dict[str, list[tuple[int, str]]] = {
        stage: _points(events, stage) for stage in ("decision", "consideration")
    }
    candidates["decision"] += purchases[:1]
    for stage in ("service", "loyalty"):
        pts = _points(events, stage)
        candidates[stage] = [p for p in pts if purchases and p[0] >= purchases[0][0]]
    candidates["loyalty"] += purchases[1:2]
    for stage in ("loyalty", "service", "decision", "consideration"):
        if candidates[stage]:
            t, mid = min(candidates[stage])
            return StageState(stage, from_micros(t), mid)  # type: ignore[arg-type]
    t, mid = min((to_micros(e.timestamp), e.messageId) for e in events)
    return StageState("awareness", from_micros(t), mid)


def oracle_cart(events: list[Event]) -> list[tuple[str, Any, Any]]:
    purchases = [to_micros(e.timestamp) for e in events if event_label(e) == "Order Completed"]
    cleared = max(purchases, default=None)
    adds: dict[str, tuple[int, str, Event]] = {}
    removes: dict[str, int] = {}
    for e in events:
        t, pid = to_micros(e.timestamp), str(e.properties.get("product_id"))
        if event_label(e) == "Product Added":
            if pid not in adds or (t, e.messageId) > adds[pid][:2]:
                adds[pid] = (t, e.messageId, e)
        elif event_label(e) == "Product Removed":
            removes[pid] = max(t, removes.get(pid, t))
    return sorted(
        (pid, e.properties.get("quantity", 1), e.properties.get("price"))
        for pid, (t, _, e) in adds.items()
        if t > removes.get(pid, t - 1) and (cleared is None or t > cleared)
    )


@settings(FAST, max_examples=150)
@given(st.one_of(customer(25), customer(8, AFTER_SALES)))
def test_stage_and_cart_match_the_definition(events: list[Event]) -> None:
    assume(events)
    s = fold(events)
    # The summary keeps the KEEP_POST_PURCHASE earliest occurrences of service/loyalty
    # signals: exact as long as fewer than that many precede the first purchase.
    first_purchase = s.purchases[0][0] if s.purchases else None
    for stats in s.signals.values():
        if stats.keep == KEEP_POST_PURCHASE and first_purchase is not None:
            assume(sum(p[0] < first_purchase for p in stats.earliest) < KEEP_POST_PURCHASE)
    assert stage_of(s, RULES) == oracle_stage(events)
    got = [(c["product_id"], c["quantity"], c["price"]) for c in s.cart()]
    assert got == oracle_cart(events)
