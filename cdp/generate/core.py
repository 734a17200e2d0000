"""``generate()``: a seeded population, simulated day by day, streamed in emission order."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from cdp.generate.emission import Emitter, Stats
from cdp.generate.people import make_person
from cdp.generate.simulate import DAY, Simulator

# No wall clock: the default timeline starts on a fixed Monday.
DEFAULT_START = datetime(2025, 1, 6, tzinfo=UTC)


class Generated:
    """A deterministic synthetic event stream and its ground truth.

    :meth:`events` re-runs the simulation on each call (same output every time) and,
    once an iteration is complete, :meth:`truth`, :meth:`event_person` and
    :attr:`stats` describe it; they run the simulation themselves if needed.
    """

    def __init__(self, customers: int, days: int, seed: int, start: datetime) -> None:
        if customers < 0 or days < 1:
            raise ValueError("customers must be >= 0 and days >= 1")
        self.customers = customers
        self.days = days
        self.seed = seed
        self.start = start
        self._done: Emitter | None = None

    def events(self, on_day: Callable[[int, int], None] | None = None) -> Iterator[dict[str, Any]]:
        """JSON-able event dicts in emission order, duplicate deliveries included.

        ``on_day(day, days)`` is called after each simulated day (for progress bars).
        Duplicates are the *same* dict object as their original.
        """
        rng = random.Random(self.seed)
        emitter = Emitter(self.seed, self.start)
        people = [make_person(rng, i, self.seed, self.days) for i in range(self.customers)]
        sim = Simulator(rng, emitter)
        for d in range(self.days):
            for person in people:
                sim.day(person, d)
            yield from emitter.release((d + 1) * DAY)
            if on_day:
                on_day(d + 1, self.days)
        yield from emitter.release(float("inf"))
        emitter.finish()
        self._done = emitter

    def _emitter(self) -> Emitter:
        if self._done is None:
            for _ in self.events():
                pass
        assert self._done is not None
        return self._done

    def truth(self) -> dict[str, str]:
        """``"TYPE:VALUE"`` (raw value as emitted) → person id, for every personal
        identifier value in the stream (not the shared kiosk device, not junk)."""
        return self._emitter().truth

    def event_persons(self) -> dict[str, str]:
        """messageId → person id of every distinct event."""
        return self._emitter().event_person

    def event_person(self, message_id: str) -> str:
        return self._emitter().event_person[message_id]

    @property
    def stats(self) -> Stats:
        return self._emitter().stats

    def truth_document(self) -> dict[str, Any]:
        """The truth file: ``{"identifiers": {...}, "events": {message_id: person_id}}``."""
        return {"identifiers": self.truth(), "events": self.event_persons()}


def generate(customers: int, days: int, seed: int, start: datetime | None = None) -> Generated:
    """A synthetic omnichannel population of ``customers`` persons over ``days`` days."""
    moment = start or DEFAULT_START
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return Generated(customers, days, seed, moment)
