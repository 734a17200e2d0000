"""The event envelope (the Kafka topic contract) and its validation."""

from cdp.events.envelope import (
    CHANNELS,
    DEADLETTER_TOPIC,
    KEY_ORDER,
    RESOLVED_TOPIC,
    TRANSITIONS_TOPIC,
    Channel,
    Event,
    Identifiers,
    channel_topic,
)
from cdp.events.validate import MAX_DEPTH, MAX_EVENT_BYTES, dump_event, parse_event, parse_object

__all__ = [
    "CHANNELS",
    "DEADLETTER_TOPIC",
    "KEY_ORDER",
    "MAX_DEPTH",
    "MAX_EVENT_BYTES",
    "RESOLVED_TOPIC",
    "TRANSITIONS_TOPIC",
    "Channel",
    "Event",
    "Identifiers",
    "channel_topic",
    "dump_event",
    "parse_event",
    "parse_object",
]
