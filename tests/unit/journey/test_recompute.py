"""The pure parts of a split's journey recomputation: which customer each stored
event goes to, the plan (summaries, deleted rows, re-attributed events, the
consistency check), merge records a split undid and the transitions a split records."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from cdp.events.envelope import Event
from cdp.journey import JourneyRules, StageState, Summary, reference_summaries
from cdp.journey.processor import Correction, should_fold, stage_transition
from cdp.journey.recompute import StoredEvent, attribute, plan
from tests.unit.journey.events import at, ev
from tests.unit.journey.test_properties import FAST, customer

RULES = JourneyRules.default()
LIVE = ("cus_a", "cus_b")


def one(e: Event) -> Summary:
    return Summary.from_event(e, RULES)


def stored(e: Event, owner: str | None, folded: str) -> StoredEvent:
    return StoredEvent(e.messageId, owner, folded, one(e))


def test_an_event_goes_to_the_customer_of_its_identifier() -> None:
    e = ev("m1", "web", "Product Viewed", at())
    assert attribute(stored(e, "cus_b", "cus_a"), LIVE, "cus_a") == "cus_b"
    # no known identifier: where it was folded, if that customer still exists
    assert attribute(stored(e, None, "cus_b"), LIVE, "cus_a") == "cus_b"
    assert attribute(stored(e, None, "cus_gone"), LIVE, "cus_a") == "cus_a"
    assert attribute(stored(e, "cus_elsewhere", "cus_b"), LIVE, "cus_a") == "cus_b"


@FAST
@given(customer(12), customer(12), st.booleans())
def test_the_plan_equals_the_reference_over_each_customers_own_events(
    a: list[Event], b: list[Event], merged_into_a: bool
) -> None:
    b = [e.model_copy(update={"messageId": f"b-{e.messageId}"}) for e in b]
    a = [e.model_copy(update={"messageId": f"a-{e.messageId}"}) for e in a]
    winner = "cus_a" if merged_into_a else "cus_b"
    # before the split: everything folded into the winner's row
    merged = reference_summaries({winner: [*a, *b]}, RULES)
    events = [stored(e, "cus_a", winner) for e in a] + [stored(e, "cus_b", winner) for e in b]
    p = plan(merged, events, LIVE, winner)
    assert p.summaries == reference_summaries({"cus_a": a, "cus_b": b}, RULES)
    assert p.consistent
    assert p.deleted == sorted(set(merged) - set(p.summaries))
    moved = {e.messageId for e in (b if merged_into_a else a)}
    assert {m for m, _ in p.moved} == moved


def test_a_customer_without_events_loses_its_row_and_missing_events_are_reported() -> None:
    e1 = ev("m1", "web", "Product Viewed", at())
    e2 = ev("m2", "store", "Order Completed", at(days=1), revenue=10)
    rows = {"cus_a": Summary.combine(one(e1), one(e2)), "cus_b": one(e2)}
    p = plan(rows, [stored(e1, "cus_a", "cus_a"), stored(e2, "cus_a", "cus_a")], LIVE, "cus_a")
    assert p.deleted == ["cus_b"] and p.moved == [] and not p.consistent
    p = plan({"cus_a": rows["cus_a"]}, [stored(e1, "cus_a", "cus_a")], LIVE, "cus_a")
    assert p.summaries == {"cus_a": one(e1)} and not p.consistent  # m2 was never stored


def test_a_merge_record_folds_only_while_identity_still_joins_the_two() -> None:
    redirects = {"cus_l": "cus_w", "cus_old": "cus_w"}

    def current(c: str) -> str:
        return redirects.get(c, c)

    assert should_fold("cus_w", "cus_l", current)
    assert should_fold("cus_old", "cus_l", current)  # winner merged on since
    assert not should_fold("cus_w", "cus_w", current)
    # split since: the loser is a customer of its own again
    del redirects["cus_l"]
    assert not should_fold("cus_w", "cus_l", current)


def test_the_transitions_a_split_records() -> None:
    since = at(days=1)
    wm = at(days=30)
    before = StageState("loyalty", at(days=2), "b3")
    after = StageState("consideration", since, "a1")
    fix = Correction("split:7")
    # the stream: at the stage's since, caused by its event
    assert stage_transition("c", before, after, wm) == (
        "c", "loyalty", "consideration", since, "a1"
    )  # fmt: skip
    # a split: at the watermark, caused by the split; a new customer at its since
    assert stage_transition("c", before, after, wm, fix) == (
        "c", "loyalty", "consideration", wm, "split:7"
    )  # fmt: skip
    assert stage_transition("c", None, after, wm, fix) == (
        "c", None, "consideration", since, "split:7"
    )  # fmt: skip
    assert stage_transition("c", before, after, None, fix) == (
        "c", "loyalty", "consideration", since, "split:7"
    )  # fmt: skip
    same = StageState("consideration", since - timedelta(hours=1), "a0")
    assert stage_transition("c", same, after, wm, fix) is None
