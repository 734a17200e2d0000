"""The event envelope: Segment spec on the wire (camelCase) plus ``channel`` and typed
``identifiers``. This model is the topic contract; ``schemas/*.json`` is generated
from it (``cdp schemas generate``) and a test fails when they drift.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

SCHEMA_VERSION = "1"

EventType = Literal["track", "identify", "page", "screen", "alias", "group"]


class Channel(StrEnum):
    web = "web"
    app = "app"
    store = "store"
    newsletter = "newsletter"
    loyalty = "loyalty"
    service = "service"


CHANNELS: tuple[str, ...] = tuple(c.value for c in Channel)

# Strongest first: the Kafka key of a channel-topic record is the first of these the
# event carries, so one person's events from one device stay ordered.
KEY_ORDER: tuple[str, ...] = (
    "user_id",
    "loyalty_card",
    "pos_customer_id",
    "email",
    "phone",
    "device_id",
    "anonymous_id",
    "cookie_id",
)

# Segment reserved traits that are identifiers.
TRAIT_IDENTIFIERS: tuple[str, ...] = ("email", "phone")

# Event names from the Segment E-commerce and Email specs plus the omnichannel names
# this project documents. Other names are accepted; these are the ones the default
# journey rules know.
KNOWN_EVENTS: tuple[str, ...] = (
    "Page Viewed",
    "Ad Clicked",
    "Products Searched",
    "Product Viewed",
    "Product Added",
    "Product Removed",
    "Cart Viewed",
    "Checkout Started",
    "Order Completed",
    "Order Refunded",
    "Email Opened",
    "Email Link Clicked",
    "Store Visited",
    "Loyalty Card Registered",
    "Loyalty Points Redeemed",
    "Support Ticket Opened",
    "Appointment Booked",
    "Application Opened",
    "Signed Up",
    "Signed In",
)


class Identifiers(BaseModel):
    """Typed identifiers. Extensible: other string-valued keys are allowed."""

    model_config = ConfigDict(extra="allow")

    email: str | None = None
    phone: str | None = None
    loyalty_card: str | None = None
    device_id: str | None = None
    cookie_id: str | None = None
    pos_customer_id: str | None = None


# The times an event may carry, in UTC. Outside them a time cannot even be converted
# to UTC (0001-01-01T00:00+01:00) or overflows the day arithmetic downstream (a
# customer's lapse date), and the processors reading it would stop on it.
EARLIEST_TIME = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(2200, 1, 1, tzinfo=UTC)


def in_time_range(moment: datetime) -> bool:
    """Whether an aware ``moment`` lies within the times an event may carry."""
    try:
        return EARLIEST_TIME <= moment.astimezone(UTC) < LATEST_TIME
    except OverflowError:  # not even convertible to UTC
        return False


def _in_time_range(moment: datetime) -> datetime:
    if not in_time_range(moment):
        raise ValueError(
            f"must lie between {EARLIEST_TIME:%Y-%m-%d} and {LATEST_TIME:%Y-%m-%d} (UTC)"
        )
    return moment


EventTime = Annotated[AwareDatetime, AfterValidator(_in_time_range)]


class Event(BaseModel):
    """One touchpoint. Field names are Segment's, so existing trackers map one to one."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    messageId: str = Field(min_length=1, max_length=100)
    type: EventType
    channel: Channel
    timestamp: EventTime = Field(
        description="Event time, ISO-8601 with zone, from 1900-01-01 to 2200-01-01 (UTC)."
    )
    event: str | None = Field(default=None, max_length=200, description="track: event name")
    name: str | None = Field(default=None, max_length=200, description="page/screen name")
    anonymousId: str | None = Field(default=None, max_length=200)
    userId: str | None = Field(default=None, max_length=200)
    previousId: str | None = Field(default=None, max_length=200, description="alias only")
    groupId: str | None = Field(default=None, max_length=200, description="group only")
    identifiers: Identifiers = Field(default_factory=Identifiers)
    sentAt: EventTime | None = None
    receivedAt: EventTime | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)
    version: str = SCHEMA_VERSION

    def identifier_pairs(self) -> list[tuple[str, str]]:
        """Every (type, raw value) the event carries, in a stable order.

        ``anonymousId`` is ``anonymous_id`` and ``userId`` is ``user_id``; the keys of
        ``identifiers`` keep their names. Segment's reserved traits ``email`` and
        ``phone`` (as ``identify`` calls carry them) count as those identifiers when
        ``identifiers`` has none of that type. ``previousId`` (alias) is not included:
        its type depends on the graph (see :mod:`cdp.identity`).
        """
        pairs: list[tuple[str, str]] = []
        if self.anonymousId is not None:
            pairs.append(("anonymous_id", self.anonymousId))
        if self.userId is not None:
            pairs.append(("user_id", self.userId))
        typed = self.identifiers.model_dump(exclude_none=True)
        for trait in TRAIT_IDENTIFIERS:
            value = self.traits.get(trait)
            if trait not in typed and isinstance(value, str):
                typed[trait] = value
        for key, value in sorted(typed.items()):
            if isinstance(value, str):
                pairs.append((key, value))
        return pairs

    def kafka_key(self) -> str:
        """The record key on a channel topic: the strongest identifier present."""
        present = dict(self.identifier_pairs())
        for id_type in KEY_ORDER:
            value = present.get(id_type)
            if value:
                return f"{id_type}:{value}"
        return f"message:{self.messageId}"

    @property
    def event_time(self) -> datetime:
        return self.timestamp


def channel_topic(channel: str) -> str:
    return f"cdp.touchpoints.{channel}"


RESOLVED_TOPIC = "cdp.touchpoints.resolved"
TRANSITIONS_TOPIC = "cdp.journey.transitions"
DEADLETTER_TOPIC = "cdp.deadletter"
ACTIONS_TOPIC = "cdp.actions"
