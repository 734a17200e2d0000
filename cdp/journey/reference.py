"""The batch reference: each customer's stage from all of their events at once.

It sorts each customer's events by (event time, messageId) and folds them through
:class:`Summary`, the same code the stream uses one event at a time, so a replay from
the lake (or a rules change) can recompute every stage and be compared with the
stream's. Summaries are order-independent, so the sort only makes the fold canonical.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from cdp.events.envelope import Event
from cdp.journey.rules import JourneyRules
from cdp.journey.stage import StageState, stage_of
from cdp.journey.summary import Summary


def reference_summaries(
    events_by_customer: Mapping[str, Iterable[Event]], rules: JourneyRules
) -> dict[str, Summary]:
    out: dict[str, Summary] = {}
    for customer, events in events_by_customer.items():
        ordered = sorted(events, key=lambda e: (e.timestamp, e.messageId))
        s = Summary()
        for e in ordered:
            s = Summary.combine(s, Summary.from_event(e, rules))
        if not s.is_empty:
            out[customer] = s
    return out


def reference_stages(
    events_by_customer: Mapping[str, Iterable[Event]], rules: JourneyRules
) -> dict[str, StageState]:
    """customer key -> stage; customers with no events are left out."""
    return {
        c: stage_of(s, rules) for c, s in reference_summaries(events_by_customer, rules).items()
    }
