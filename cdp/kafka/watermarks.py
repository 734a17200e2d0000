"""Partition watermarks with retries: right after a topic is created or the broker
restarted, leaders are still being elected and the broker answers "not leader"."""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka import KafkaException, TopicPartition

from cdp.errors import KafkaError

RETRIABLE = {
    RdKafkaError.NOT_LEADER_FOR_PARTITION,
    RdKafkaError.LEADER_NOT_AVAILABLE,
    RdKafkaError.UNKNOWN_TOPIC_OR_PART,
    RdKafkaError._TIMED_OUT,
    RdKafkaError._TRANSPORT,
    RdKafkaError._ALL_BROKERS_DOWN,
    RdKafkaError.REQUEST_TIMED_OUT,
}


def watermarks(consumer: Any, topic: str, partition: int, timeout: float = 60.0) -> tuple[int, int]:
    """(low, high) of one partition, retrying transient broker states."""
    deadline = time.monotonic() + timeout
    delay = 0.1
    while True:
        try:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=min(10.0, timeout)
            )
            return int(low), int(high)
        except KafkaException as exc:
            err = exc.args[0]
            if err.code() not in RETRIABLE or time.monotonic() > deadline:
                raise KafkaError(f"watermarks of {topic}[{partition}]: {err}") from exc
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
