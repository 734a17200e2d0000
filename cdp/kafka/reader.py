"""Read a whole topic from the beginning to its current end (no consumer-group
commits): for `cdp dlq`, `cdp identity rebuild` and tests."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, TIMESTAMP_NOT_AVAILABLE, Consumer, TopicPartition

from cdp.config import Settings
from cdp.errors import KafkaError
from cdp.kafka.watermarks import watermarks
from cdp.pipeline.records import Record, is_restored

log = logging.getLogger(__name__)


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


def range_consumer(settings: Settings, name: str) -> Any:
    """A consumer for :func:`read_range` and :func:`iter_range`: assigns partitions
    itself, never joins the group named here and never commits. Reads what Faust's
    consumer reads (``read_uncommitted``)."""
    return Consumer(
        settings.librdkafka(
            **{
                "group.id": f"cdp-{name}-range",
                "enable.auto.commit": False,
                "enable.partition.eof": False,
                "isolation.level": "read_uncommitted",
            }
        )
    )


def read_range(
    consumer: Any,
    topic: str,
    partition: int,
    first: int | None,
    last: int,
    timeout: float = 10.0,
) -> list[Record]:
    """The records of ``topic[partition]`` with offsets ``first..last`` (both included;
    ``first`` None: from the partition's start) that are still on the broker.

    Raises :class:`KafkaError` when the broker's end offset is not past ``last`` yet
    (a broker just restarted can report a lagging high watermark): a shorter answer
    would pass for a complete one. Records already deleted (retention, DeleteRecords)
    cannot be read; that is logged."""
    low, high = watermarks(consumer, topic, partition, timeout=timeout)
    if high <= last:
        raise KafkaError(f"{topic}[{partition}] ends at {high}, not yet past offset {last}")
    start = low if first is None else max(first, low)
    if first is not None and first < low:
        log.warning(
            "%s[%d] offsets %d..%d are no longer on the broker (retention or deletion)",
            topic, partition, first, min(low - 1, last),
        )  # fmt: skip
    stop = last
    if start > stop:
        return []
    return [_record(msg) for msg in iter_range(consumer, topic, partition, start, stop, timeout)]


def _record(msg: Any) -> Record:
    ts_type, ts = msg.timestamp()
    return Record(
        topic=msg.topic(),
        partition=msg.partition(),
        offset=msg.offset(),
        key=msg.key(),
        value=msg.value() or b"",
        timestamp_ms=None if ts_type == TIMESTAMP_NOT_AVAILABLE else ts,
        restored=is_restored(msg.headers()),
    )


def iter_range(
    consumer: Any, topic: str, partition: int, start: int, stop: int, timeout: float = 10.0
) -> Iterator[Any]:
    """The messages of ``topic[partition]`` at offsets ``start..stop`` (both included,
    all on the broker); :class:`KafkaError` after ``timeout`` s without one."""
    if start > stop:
        return
    consumer.assign([TopicPartition(topic, partition, start)])
    try:
        idle_since = time.monotonic()
        while True:
            # consume() waits its whole timeout unless the batch fills: poll briefly
            msgs = consumer.consume(1000, 0.1)
            if not msgs:
                if time.monotonic() - idle_since > timeout:
                    raise KafkaError(f"timed out reading {topic}[{partition}] {start}..{stop}")
                continue
            idle_since = time.monotonic()
            for msg in msgs:
                if msg.error():
                    raise KafkaError(f"reading {topic}[{partition}]: {msg.error()}")
                offset = msg.offset()
                if msg.topic() != topic or msg.partition() != partition or offset < start:
                    continue  # left over from an earlier assignment
                if offset > stop:
                    return
                yield msg
                if offset >= stop:
                    return
    finally:
        consumer.unassign()
