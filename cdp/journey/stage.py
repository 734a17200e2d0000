"""The stage function: a pure function of a :class:`Summary` and the rules.

Let P1, P2 be the customer's first and second purchases (distinct events, ordered by
(time, messageId)). The stage is the highest of these that holds:

loyalty        P2 exists (if ``repeat_purchase_is_loyalty``), or a loyalty signal at or
               after P1's time.                  since = earliest of those.
service        a service signal at or after P1's time.   since = earliest such.
decision       a decision signal, or P1.         since = earliest of those.
consideration  a consideration signal.           since = earliest such.
awareness      otherwise (any event at all).     since = the customer's first event.

"since"/message_id are the (time, messageId) of the occurrence that made the stage
true; ties on time go to the smaller messageId. Adding events never lowers the stage
(every condition is monotone in the event set). Flags are evaluated against a
watermark (the greatest event time seen), never the wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cdp.journey.rules import JourneyRules, Stage
from cdp.journey.summary import Point, Summary, from_micros, to_micros

STUCK = "stuck"
LAPSED = "lapsed"


@dataclass(frozen=True, slots=True)
class StageState:
    stage: Stage
    since: datetime
    message_id: str


@dataclass(frozen=True, slots=True)
class Transition:
    from_stage: Stage | None
    to_stage: Stage
    event_time: datetime
    message_id: str


def _first(points: list[Point | None]) -> Point | None:
    present = [p for p in points if p is not None]
    return min(present) if present else None


def stage_of(summary: Summary, rules: JourneyRules) -> StageState:
    """The customer's stage (see the module docstring). Raises ValueError if empty."""
    if summary.first is None:
        raise ValueError("an empty summary has no stage")
    by_stage: dict[str, list[Point | None]] = {
        "loyalty": [],
        "service": [],
        "decision": [],
        "consideration": [],
    }
    p1 = summary.purchases[0] if summary.purchases else None
    for sig in rules.signals:
        st = summary.signals.get(sig.name)
        if st is None or sig.stage == "awareness":
            continue
        if sig.stage in ("service", "loyalty"):
            if p1 is not None:
                by_stage[sig.stage].append(st.first_at_or_after(p1[0]))
        else:
            by_stage[sig.stage].append(st.earliest[0])
    if p1 is not None:
        by_stage["decision"].append(p1)
        if rules.repeat_purchase_is_loyalty and len(summary.purchases) >= 2:
            by_stage["loyalty"].append(summary.purchases[1])
    stage: Stage
    for stage in ("loyalty", "service", "decision", "consideration"):
        hit = _first(by_stage[stage])
        if hit is not None:
            return StageState(stage, from_micros(hit[0]), hit[1])
    t, mid, _ = summary.first
    return StageState("awareness", from_micros(t), mid)


def flags(
    summary: Summary,
    watermark: datetime,
    rules: JourneyRules,
    state: StageState | None = None,
) -> frozenset[str]:
    """``stuck``: in consideration with a non-empty cart whose latest add is more than
    ``stuck_after`` before the watermark. ``lapsed``: the latest touchpoint is more than
    ``lapsed_after`` before the watermark. Pass ``state`` to skip recomputing it."""
    if summary.first is None:
        return frozenset()
    wm = to_micros(watermark)  # also rejects naive datetimes
    out: set[str] = set()
    last_touch = summary.last_touch_at
    if last_touch is not None and wm - to_micros(last_touch) > _us(rules.lapsed_after):
        out.add(LAPSED)
    stage = (state or stage_of(summary, rules)).stage
    if stage == "consideration":
        cart_at = summary.cart_updated_at()
        if cart_at is not None and wm - to_micros(cart_at) > _us(rules.stuck_after):
            out.add(STUCK)
    return frozenset(out)


def transitions(before: StageState | None, after: StageState) -> Transition | None:
    """The transition from ``before`` (None: a new customer) to ``after``, or None
    when the stage did not change (a moved ``since`` alone is not a transition)."""
    if before is not None and before.stage == after.stage:
        return None
    return Transition(
        before.stage if before is not None else None, after.stage, after.since, after.message_id
    )


def _us(delta: timedelta) -> int:
    return delta // timedelta(microseconds=1)
