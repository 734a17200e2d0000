"""Event builders shared by the journey tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cdp.events.envelope import Channel, Event

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def at(days: float = 0, hours: float = 0, minutes: float = 0) -> datetime:
    return T0 + timedelta(days=days, hours=hours, minutes=minutes)


def ev(mid: str, channel: str, event: str, when: datetime, **props: Any) -> Event:
    """A track call; keyword arguments become ``properties``."""
    return Event(
        messageId=mid,
        type="track",
        channel=Channel(channel),
        event=event,
        timestamp=when,
        properties=props,
    )
