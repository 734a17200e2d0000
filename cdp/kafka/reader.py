"""Read a whole topic from the beginning to its current end (no consumer-group
commits): for `cdp dlq`, `cdp identity rebuild` and tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from cdp.config import Settings
from cdp.errors import KafkaError
from cdp.kafka.watermarks import watermarks


def read_topic(settings: Settings, topic: str, timeout: float = 10.0) -> Iterator[Any]:
    """Yield every message currently in ``topic`` (all partitions), then stop."""
    consumer = Consumer(
        settings.librdkafka(
            **{
                "group.id": f"cdp-reader-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "enable.partition.eof": False,
            }
        )
    )
    try:
        md = consumer.list_topics(topic, timeout=timeout)
        meta = md.topics.get(topic)
        if meta is None or meta.error is not None:
            raise KafkaError(f"topic {topic} does not exist (run `cdp topics create`)")
        ends: dict[int, int] = {}
        assignment = []
        for pid in meta.partitions:
            low, high = watermarks(consumer, topic, pid)
            if high > low:
                ends[pid] = high
                assignment.append(TopicPartition(topic, pid, OFFSET_BEGINNING))
        if not assignment:
            return
        consumer.assign(assignment)
        remaining = dict(ends)
        while remaining:
            msg = consumer.poll(timeout)
            if msg is None:
                raise KafkaError(f"timed out reading {topic}; {len(remaining)} partition(s) left")
            if msg.error():
                continue
            yield msg
            pid, offset = msg.partition(), msg.offset()
            if pid in remaining and offset is not None and offset >= remaining[pid] - 1:
                del remaining[pid]
    finally:
        consumer.close()
