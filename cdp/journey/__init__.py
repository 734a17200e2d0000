"""Journey stages: rules (``schemas/journey.yaml``), the order-independent per-customer
:class:`Summary`, the pure stage function, flags and transitions, and the batch
reference. No I/O beyond reading the rules file. See ``docs/journey.md``."""

from cdp.journey.reference import reference_stages, reference_summaries
from cdp.journey.rules import (
    DEFAULT_PATH,
    STAGE_RANK,
    STAGES,
    JourneyRules,
    Signal,
    Stage,
)
from cdp.journey.stage import LAPSED, STUCK, StageState, Transition, flags, stage_of, transitions
from cdp.journey.summary import CartLine, SignalStats, Summary, event_label

__all__ = [
    "DEFAULT_PATH",
    "LAPSED",
    "STAGES",
    "STAGE_RANK",
    "STUCK",
    "CartLine",
    "JourneyRules",
    "Signal",
    "SignalStats",
    "Stage",
    "StageState",
    "Summary",
    "Transition",
    "event_label",
    "flags",
    "reference_stages",
    "reference_summaries",
    "stage_of",
    "transitions",
]
