"""From simulated touchpoints to the emitted stream: ids, time stamps, consent, mess.

The simulator hands each event over with its event time (seconds since ``start``). The
emitter completes the envelope, records the truth, adds realistic mess (junk identifier
values, duplicate deliveries, late and shuffled delivery) and releases events in
*emission* order through a heap keyed by delivery time.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from cdp.generate.catalog import JUNK_BY_TYPE, JUNK_VALUES, KIOSK_IDS

P_JUNK = 0.02  # events that get one junk identifier value
P_DUPLICATE = 0.01  # events delivered twice (same messageId, same payload)
P_CONSENT_IN_EVENT = 0.95  # of a consenting person's events
# Delivery delay: most events within a couple of minutes (shuffled), some hours late
# (offline app, till batch upload), a few days late.
P_LATE_HOURS = 0.04
P_LATE_DAYS = 0.01
P_STORE_LATE_HOURS = 0.15
CLIENT_CHANNELS = frozenset({"web", "app"})

_TOP_LEVEL_IDS: tuple[tuple[str, str], ...] = (
    ("anonymousId", "anonymous_id"),
    ("userId", "user_id"),
)
_JUNK_KEYS = tuple(JUNK_BY_TYPE)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_IGNORED = JUNK_VALUES | KIOSK_IDS


@dataclass(slots=True)
class Stats:
    events: int = 0  # emitted, duplicates included
    distinct_events: int = 0
    duplicates: int = 0
    junk_values: int = 0
    out_of_order: int = 0  # emitted after an event with a later timestamp
    late_events: int = 0  # delivered an hour or more after their timestamp
    persons: int = 0  # persons with at least one event
    identifiers: int = 0  # keys of the truth mapping

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class Emitter:
    def __init__(self, seed: int, start: datetime) -> None:
        self._seed = seed
        self._epoch = (start - _EPOCH).total_seconds()
        self._hours: dict[int, str] = {}
        self._rng = random.Random(f"{seed}:emission")
        self._heap: list[tuple[float, int, float, dict[str, Any]]] = []
        self._n = 0
        self._max_emitted = float("-inf")
        self.truth: dict[str, str] = {}
        self.event_person: dict[str, str] = {}
        self.stats = Stats()
        self._persons: set[str] = set()

    def _time(self, seconds: float) -> str:
        """ISO-8601 UTC with milliseconds; "date + hour" cached (this is the hot path)."""
        hour, ms = divmod(int((self._epoch + seconds) * 1000), 3_600_000)
        prefix = self._hours.get(hour)
        if prefix is None:
            prefix = (_EPOCH + timedelta(hours=hour)).strftime("%Y-%m-%dT%H:")
            self._hours[hour] = prefix
        m, ms = divmod(ms, 60_000)
        s, ms = divmod(ms, 1000)
        return f"{prefix}{m:02d}:{s:02d}.{ms:03d}+00:00"

    def _delay(self, channel: str) -> float:
        x = self._rng.random()
        if x < P_LATE_DAYS:
            return self._rng.uniform(86_400, 3 * 86_400)
        late_hours = P_STORE_LATE_HOURS if channel == "store" else P_LATE_HOURS
        if x < P_LATE_DAYS + late_hours:
            return self._rng.uniform(3_600, 12 * 3_600)
        return self._rng.uniform(0.05, 180)

    def add(self, person_id: str, marketing: bool | None, t: float, ev: dict[str, Any]) -> None:
        """Complete ``ev`` (type, channel, ids, properties set by the caller) and queue it."""
        rng = self._rng
        self._n += 1
        message_id = hashlib.blake2b(f"{self._seed}-{self._n}".encode(), digest_size=12).hexdigest()
        ev["messageId"] = message_id
        ev["timestamp"] = self._time(t)
        if marketing is not None and rng.random() < P_CONSENT_IN_EVENT:
            consent = {"categoryPreferences": {"analytics": True, "marketing": marketing}}
            if "context" in ev:
                ev["context"]["consent"] = consent
            else:
                ev["context"] = {"consent": consent}
        if rng.random() < P_JUNK:
            self._add_junk(ev)
        self._record(person_id, message_id, ev)
        channel = ev["channel"]
        due = t + self._delay(channel)
        if channel in CLIENT_CHANNELS:
            ev["sentAt"] = self._time(due)
        heapq.heappush(self._heap, (due, self._n, t, ev))
        self.stats.distinct_events += 1
        if rng.random() < P_DUPLICATE:  # a retry after a lost acknowledgement
            self.stats.duplicates += 1
            heapq.heappush(self._heap, (due + rng.uniform(1, 900), -self._n, t, ev))

    def _add_junk(self, ev: dict[str, Any]) -> None:
        id_type = self._rng.choice(_JUNK_KEYS)
        value = self._rng.choice(JUNK_BY_TYPE[id_type])
        if id_type == "user_id":
            if ev["type"] != "track" or "userId" in ev:
                return
            ev["userId"] = value
        else:
            ids = ev.setdefault("identifiers", {})
            if id_type in ids:
                return  # keep the real value: junk is added, never substituted
            ids[id_type] = value
        self.stats.junk_values += 1

    def _record(self, person_id: str, message_id: str, ev: dict[str, Any]) -> None:
        self.event_person[message_id] = person_id
        self._persons.add(person_id)
        truth = self.truth
        pairs = [(t, ev.get(k)) for k, t in _TOP_LEVEL_IDS]
        if "previousId" in ev:
            pairs.append(("anonymous_id", ev["previousId"]))
        if "identifiers" in ev:
            pairs.extend(ev["identifiers"].items())
        if "traits" in ev:
            pairs.append(("email", ev["traits"].get("email")))
        for id_type, value in pairs:
            if value is not None and value not in _IGNORED:
                key = f"{id_type}:{value}"
                if key not in truth:
                    truth[key] = person_id

    def release(self, until: float) -> Iterator[dict[str, Any]]:
        """Events due before ``until`` seconds, in delivery order."""
        heap, stats = self._heap, self.stats
        while heap and heap[0][0] < until:
            due, _, t, ev = heapq.heappop(heap)
            stats.events += 1
            if due - t >= 3_600:
                stats.late_events += 1
            if t < self._max_emitted:
                stats.out_of_order += 1
            else:
                self._max_emitted = t
            yield ev

    def finish(self) -> None:
        self.stats.persons = len(self._persons)
        self.stats.identifiers = len(self.truth)
