"""The pure evaluation core of activation: no I/O, no clock.

Given a customer's *trigger* events, the facts folded from all of their events
(:class:`Profile`: when they first became identified, their latest stated marketing
consent, their cancelling events) and the event-time *watermark*, :func:`evaluate`
says which actions fire. The result depends on the set of inputs and the watermark
only: triggers are decided in ``(due_at, trigger time, action_id)`` order, never in
arrival order, and :class:`Profile` folds commutatively.

Timer semantics: a trigger at ``t`` of a rule with ``wait`` is due at ``t + wait``,
moved to the end of the quiet hours when it falls inside them (rules with
``quiet_hours``). It is decided once the watermark reaches ``due``:

- **cancelled** when the customer has an ``unless`` event in ``(t, max(t + within, due)]``
  (a purchase during the quiet-hours deferral cancels the offer too);
- **not_identified** when the rule needs an identified customer and none of their events
  up to ``due`` carried a user id or an email;
- **no_consent** when the rule needs marketing consent and the customer's latest stated
  preference is ``false`` (or they never stated one and ``consent_when_absent: deny``);
- **frequency_cap** when ``cap.max`` actions of the same customer and action already
  fired less than ``cap.per`` apart (in either direction, so a late trigger can never
  exceed the cap);
- otherwise **fired**. One decision per trigger: ``action_id`` is a stable hash of the
  rule and the trigger's messageId.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cdp.activation.rules import ActionRules, Rule
from cdp.events.envelope import Event

FIRED = "fired"
CANCELLED = "cancelled"
NOT_IDENTIFIED = "not_identified"
NO_CONSENT = "no_consent"
FREQUENCY_CAP = "frequency_cap"
OUTCOMES = (FIRED, CANCELLED, NOT_IDENTIFIED, NO_CONSENT, FREQUENCY_CAP)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ConsentPoint = tuple[datetime, str, bool]  # (event time, messageId, marketing allowed)


def action_id(rule: str, trigger_message_id: str) -> str:
    """Stable id of the one action a trigger can produce."""
    digest = hashlib.sha256(f"{rule}\x00{trigger_message_id}".encode()).hexdigest()
    return f"act_{digest[:32]}"


def marketing_consent(context: Mapping[str, Any]) -> bool | None:
    """``context.consent.categoryPreferences.marketing`` (Segment's consent shape) or a
    flat ``context.consent.marketing``; None when the event states nothing."""
    consent = context.get("consent") if isinstance(context, Mapping) else None
    if not isinstance(consent, Mapping):
        return None
    for holder in (consent.get("categoryPreferences"), consent):
        if isinstance(holder, Mapping) and isinstance(holder.get("marketing"), bool):
            return bool(holder["marketing"])
    return None


@dataclass(frozen=True, slots=True)
class Profile:
    """What activation knows about a customer, folded commutatively from their events.

    ``cancels`` holds the times of the rules' ``unless`` events by event name;
    ``channels`` counts touchpoints per channel (for the preferred channel).
    """

    identified_at: datetime | None = None
    consent: ConsentPoint | None = None
    cancels: Mapping[str, frozenset[tuple[datetime, str]]] = field(default_factory=dict)
    channels: Mapping[str, int] = field(default_factory=dict)

    @staticmethod
    def combine(a: Profile, b: Profile) -> Profile:
        ident = [x for x in (a.identified_at, b.identified_at) if x is not None]
        consent = [x for x in (a.consent, b.consent) if x is not None]
        cancels = dict(a.cancels)
        for name, times in b.cancels.items():
            cancels[name] = cancels.get(name, frozenset()) | times
        channels = dict(a.channels)
        for ch, n in b.channels.items():
            channels[ch] = channels.get(ch, 0) + n
        return Profile(
            min(ident) if ident else None,
            max(consent) if consent else None,
            cancels,
            channels,
        )

    def consent_value(self, when_absent: bool) -> bool:
        return when_absent if self.consent is None else self.consent[2]


def profile_of_event(
    event: Event, rules: ActionRules, identifies: Callable[[Event], bool]
) -> Profile:
    """One event's contribution to its customer's :class:`Profile`."""
    stated = marketing_consent(event.context)
    label = event.event if event.type == "track" else event.type
    cancels: dict[str, frozenset[tuple[datetime, str]]] = {}
    if event.type == "track" and event.event in rules.cancel_events:
        cancels[event.event] = frozenset({(event.timestamp, event.messageId)})
    touch = event.type in ("track", "page", "screen") and label is not None
    return Profile(
        event.timestamp if identifies(event) else None,
        (event.timestamp, event.messageId, stated) if stated is not None else None,
        cancels,
        {event.channel.value: 1} if touch else {},
    )


def has_user_id_or_email(event: Event) -> bool:
    """The simplest identification test: a non-empty user id or email on the event.
    The processor uses the identity rules instead (junk and blocked values do not count)."""
    return any(t in ("user_id", "email") and v.strip() for t, v in event.identifier_pairs())


@dataclass(frozen=True, slots=True)
class Trigger:
    rule: str
    customer_id: str
    message_id: str  # the trigger event's messageId (or a transition's stable id)
    at: datetime

    @property
    def action_id(self) -> str:
        return action_id(self.rule, self.message_id)


@dataclass(frozen=True, slots=True)
class Decision:
    action_id: str
    rule: str
    action: str
    customer_id: str
    trigger_message_id: str
    trigger_at: datetime
    due_at: datetime
    deferred: bool  # moved to the end of quiet hours
    outcome: str


def triggers_of_event(customer_id: str, event: Event, rules: ActionRules) -> list[Trigger]:
    if event.type != "track" or event.event is None:
        return []
    return [
        Trigger(r.name, customer_id, event.messageId, event.timestamp)
        for r in rules.by_event.get(event.event, ())
    ]


def transition_id(customer_id: str, to_stage: str, at: datetime, message_id: str | None) -> str:
    """A stable id for a journey transition (flags such as lapsed carry no messageId).
    A hash: it is kept for de-duplication (``seen_messages``), where a customer id in
    plain would survive ``cdp identity forget``."""
    key = f"{customer_id}\x00{to_stage}\x00{at.isoformat()}\x00{message_id or ''}"
    return f"transition_{hashlib.sha256(key.encode()).hexdigest()[:32]}"


def triggers_of_transition(
    customer_id: str, to_stage: str, at: datetime, message_id: str | None, rules: ActionRules
) -> list[Trigger]:
    tid = transition_id(customer_id, to_stage, at, message_id)
    return [Trigger(r.name, customer_id, tid, at) for r in rules.by_transition.get(to_stage, ())]


def due_at(rule: Rule, at: datetime, rules: ActionRules) -> tuple[datetime, bool]:
    """(when the trigger is decided, whether quiet hours deferred it)."""
    due = at + rule.wait
    if rule.quiet_hours and rules.quiet is not None:
        moved = rules.quiet.defer(due)
        return moved, moved != due
    return due, False


def outcome(
    rule: Rule,
    trigger: Trigger,
    due: datetime,
    profile: Profile,
    fired: Sequence[datetime],
    rules: ActionRules,
) -> str:
    """The decision for one due trigger; ``fired``: due times of the same customer's
    fired actions of the same action."""
    if rule.unless_event is not None:
        end = max(trigger.at + rule.unless_within, due)
        for t, _ in profile.cancels.get(rule.unless_event, ()):
            if trigger.at < t <= end:
                return CANCELLED
    if rule.identified and (profile.identified_at is None or profile.identified_at > due):
        return NOT_IDENTIFIED
    if rule.consent and not profile.consent_value(rules.consent_when_absent):
        return NO_CONSENT
    if rule.cap is not None:
        near = sum(1 for f in fired if abs(f - due) < rule.cap.per)
        if near >= rule.cap.max:
            return FREQUENCY_CAP
    return FIRED


def evaluate(
    triggers: Iterable[Trigger],
    profiles: Mapping[str, Profile],
    watermark: datetime | None,
    rules: ActionRules,
    fired: Mapping[tuple[str, str], Sequence[datetime]] | None = None,
) -> list[Decision]:
    """Decide every trigger due at or before ``watermark``, in (due, time, id) order.

    ``fired`` holds earlier fired actions per (customer, action) for the frequency cap
    (empty for a batch reference over all events). Triggers not yet due are left out.
    """
    if watermark is None:
        return []
    todo: dict[str, tuple[datetime, bool, Trigger, Rule]] = {}
    for trig in triggers:
        rule = rules.by_name.get(trig.rule)
        if rule is None:
            continue
        due, deferred = due_at(rule, trig.at, rules)
        if due <= watermark:
            todo.setdefault(trig.action_id, (due, deferred, trig, rule))
    history: dict[tuple[str, str], list[datetime]] = {k: list(v) for k, v in (fired or {}).items()}
    out: list[Decision] = []
    for aid, (due, deferred, trig, rule) in sorted(
        todo.items(), key=lambda kv: (kv[1][0], kv[1][2].at, kv[0])
    ):
        key = (trig.customer_id, rule.action)
        past = history.setdefault(key, [])
        result = outcome(rule, trig, due, profiles.get(trig.customer_id, Profile()), past, rules)
        if result == FIRED:
            past.append(due)
        out.append(
            Decision(
                aid, rule.name, rule.action, trig.customer_id, trig.message_id, trig.at,
                due, deferred, result,
            )
        )  # fmt: skip
    return out


def reference(
    events_by_customer: Mapping[str, Iterable[Event]],
    watermark: datetime | None,
    rules: ActionRules,
    identifies: Callable[[Event], bool] = has_user_id_or_email,
    transitions: Iterable[tuple[str, str, datetime, str | None]] = (),
) -> list[Decision]:
    """The batch reference: every decision over a whole set of events (grouped by
    customer) and journey transitions ``(customer, to, event_time, message_id)``."""
    profiles: dict[str, Profile] = {}
    triggers: list[Trigger] = []
    for cid, events in events_by_customer.items():
        seen: set[str] = set()
        p = Profile()
        for ev in events:
            if ev.messageId in seen:
                continue
            seen.add(ev.messageId)
            p = Profile.combine(p, profile_of_event(ev, rules, identifies))
            triggers += triggers_of_event(cid, ev, rules)
        profiles[cid] = p
    for cid, to, at, mid in transitions:
        triggers += triggers_of_transition(cid, to, at, mid, rules)
    return evaluate(triggers, profiles, watermark, rules)


def combined_watermark(latest: Iterable[datetime], idle: timedelta) -> datetime | None:
    """The event time every active input partition has reached: the minimum of the
    partitions' latest event times, leaving out *idle* partitions (more than ``idle``
    behind the most advanced one), which would otherwise hold every timer back.

    Per-partition, not one global maximum: a consumer reading one partition ahead of
    another must not fire a timer whose cancelling event waits, unread, in the slower
    partition."""
    times = list(latest)
    if not times:
        return None
    front = max(times)
    return min(t for t in times if t >= front - idle)


def preferred_channel(channels: Mapping[str, int], touch: Mapping[str, datetime]) -> str | None:
    """The channel with most touchpoints; ties: the most recently used, then the name."""
    if not channels:
        return None
    return max(channels, key=lambda ch: (channels[ch], touch.get(ch, _EPOCH), ch))


class Identification:
    """Whether an event identifies its customer: a user id or an email that the identity
    rules accept (not blocked, well-formed); junk values do not count. Pure."""

    def __init__(self, merge_rules: Any, region: str) -> None:
        self.rules = merge_rules
        self.region = region

    def __call__(self, event: Event) -> bool:
        from cdp.identity.normalize import normalize

        for id_type, raw in event.identifier_pairs():
            if id_type not in ("user_id", "email") or self.rules.is_blocked(raw):
                continue
            value = normalize(id_type, raw, self.region)
            if value is not None and not self.rules.is_blocked(value):
                return True
        return False
