"""Topic provisioning: the contract's topics with partitions, retention and cleanup
policy from configuration. ``create_topics`` is idempotent: existing topics are left
as they are (reported, never altered or deleted).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from cdp.config import Settings
from cdp.errors import KafkaError
from cdp.events.envelope import CHANNELS
from cdp.kafka.probe import probe
from cdp.kafka.reader import range_consumer
from cdp.kafka.watermarks import watermarks


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str]
    purpose: str


def topic_specs(settings: Settings) -> list[TopicSpec]:
    retention = str(settings.topic_retention_ms)
    parts = settings.topic_partitions
    delete = {"cleanup.policy": "delete", "retention.ms": retention}
    specs = [
        TopicSpec(settings.topic(f"touchpoints.{ch}"), parts, delete, f"raw {ch} touchpoints")
        for ch in CHANNELS
    ]
    specs += [
        TopicSpec(settings.topic("touchpoints.resolved"), parts, delete,
                  "events with customerId + merge/split records, key = customer id"),
        TopicSpec(settings.topic("journey.transitions"), parts, delete,
                  "stage transitions, key = customer id"),
        TopicSpec(settings.topic("journey.progress"), 1,
                  {"cleanup.policy": "delete", "retention.ms": str(24 * 3600 * 1000)},
                  "offsets the journey has applied, after each batch (wakes the actions"
                  " processor)"),
        TopicSpec(settings.topic("deadletter"), 1,
                  {"cleanup.policy": "delete", "retention.ms": str(30 * 24 * 3600 * 1000)},
                  "invalid input with raw bytes, source and reason"),
        TopicSpec(settings.topic("actions"), parts, delete, "activation actions"),
    ]  # fmt: skip
    return specs


def admin_client(settings: Settings) -> AdminClient:
    return AdminClient(settings.librdkafka())


def existing_topics(settings: Settings, timeout: float = 10.0) -> dict[str, int]:
    """Topic name → partition count, as the broker reports them."""
    md = probe(settings, timeout=timeout)  # its errors name the cause (refused login, ...)
    return {name: len(t.partitions) for name, t in md.topics.items()}


def create_topics(settings: Settings, timeout: float = 30.0) -> dict[str, str]:
    """Create missing topics; returns name → ``created`` | ``exists``."""
    have = existing_topics(settings)
    result: dict[str, str] = {}
    wanted = []
    for spec in topic_specs(settings):
        if spec.name in have:
            result[spec.name] = "exists"
        else:
            wanted.append(NewTopic(spec.name, spec.partitions, 1, config=spec.config))
    if wanted:
        admin = admin_client(settings)  # keep a reference: futures die with the handle
        futures = admin.create_topics(wanted, operation_timeout=timeout)
        for name, fut in futures.items():
            try:
                fut.result()
                result[name] = "created"
            except KafkaException as exc:
                err = exc.args[0]
                if getattr(err, "name", lambda: "")() == "TOPIC_ALREADY_EXISTS":
                    result[name] = "exists"
                else:
                    raise KafkaError(f"cannot create topic {name}: {exc}") from exc
        created = [t for t in wanted if result[t.topic] == "created"]
        wait_writable(settings, {t.topic: t.num_partitions for t in created}, timeout)
    return result


def wait_writable(settings: Settings, topics: dict[str, int], timeout: float = 30.0) -> None:
    """Until the leader of every partition of ``topics`` (name → partitions) serves it.

    A broker reports a new partition's leader a moment before that leader can take
    writes, and records an idempotent producer with more than one request in flight
    sends in that moment can be lost (KAFKA-15591): the first request fails ("not
    leader"), the second is appended with a later sequence, the first is then refused
    as out of order, and librdkafka, seeing the later one acknowledged, reports both
    delivered. A partition that answers a ListOffsets request has its leader ready, so
    producers started after this returns are past that moment."""
    consumer = range_consumer(settings, "topic-setup")
    try:
        for topic, partitions in topics.items():
            for partition in range(partitions):
                watermarks(consumer, topic, partition, timeout)
    finally:
        consumer.close()


def describe_topics(settings: Settings) -> list[dict[str, Any]]:
    have = existing_topics(settings)
    return [
        {
            "name": spec.name,
            "exists": spec.name in have,
            "partitions": have.get(spec.name, spec.partitions),
            "config": spec.config,
            "purpose": spec.purpose,
        }
        for spec in topic_specs(settings)
    ]
