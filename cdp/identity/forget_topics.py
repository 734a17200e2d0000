"""Erase a person's records from the Kafka topics.

Kafka deletes only prefixes of a partition (``DeleteRecords``), so for each partition
holding one of the person's records (the last at offset L):

1. wait until every processor that consumes the topic has applied L (its fence in
   ``applied_offsets``), so no record of anyone is erased before it was applied;
2. copy the other records of ``[low, L]`` to the end of the same partition, with
   their key, value, headers and timestamp and a ``cdp-restored`` header naming the
   original (processors skip restored copies: they applied the original; readers of
   whole topics such as ``cdp identity rebuild`` and ``cdp dlq`` still see them);
3. delete the prefix up to L.

A crash between 2 and 3 is repaired by running forget again: copies already at the
end are recognised by their header and not copied twice. The scan repeats until a
pass finds nothing (records of the person may arrive while it runs; they are
suppressed by then, so the pipeline drops them).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka import Producer as KafkaProducer

from cdp.config import Settings
from cdp.errors import CDPError, KafkaError
from cdp.identity.forget_match import PersonMatcher
from cdp.kafka.producer import PRODUCER_DEFAULTS
from cdp.kafka.reader import iter_range, range_consumer
from cdp.kafka.topics import admin_client, existing_topics, topic_specs
from cdp.kafka.watermarks import watermarks
from cdp.pipeline.records import RESTORED_HEADER, restored_origin

MAX_PASSES = 3
Progress = Callable[[str, int], None]  # (topic[partition], records scanned so far)


@dataclass
class TopicErasure:
    erased: int = 0  # the person's records deleted
    restored: int = 0  # other records copied to the end of their partition first
    scanned: int = 0
    partitions: dict[str, int] = field(default_factory=dict)  # "topic[p]" → erased

    def as_dict(self) -> dict[str, Any]:
        return {
            "erased": self.erased,
            "restored": self.restored,
            "scanned": self.scanned,
            "partitions": dict(sorted(self.partitions.items())),
        }


@dataclass
class _Scan:
    low: int
    matched: set[int] = field(default_factory=set)
    copied: set[str] = field(default_factory=set)  # origins with a copy past the last match

    @property
    def last(self) -> int:
        return max(self.matched)


def erasable_topics(settings: Settings) -> list[str]:
    """Every cdp topic that can hold personal data (the progress topic holds offsets)."""
    progress = settings.topic("journey.progress")
    return [s.name for s in topic_specs(settings) if s.name != progress]


def erase_from_topics(
    settings: Settings,
    conn: psycopg.Connection[Any],
    matcher: PersonMatcher,
    *,
    wait_s: float = 60.0,
    progress: Progress | None = None,
) -> TopicErasure:
    have = existing_topics(settings)
    topics = [t for t in erasable_topics(settings) if t in have]
    result = TopicErasure()
    eraser = _Eraser(settings, conn, matcher, result, progress)
    try:
        for _ in range(MAX_PASSES):
            found = 0
            for topic in topics:
                for partition in range(have[topic]):
                    found += eraser.partition(topic, partition, wait_s)
            if not found:
                return result
    finally:
        eraser.close()
    raise CDPError(
        f"records of this person kept arriving through {MAX_PASSES} passes over the topics;"
        " they are suppressed but not yet erased from PostgreSQL: stop their sources and"
        " run forget again"
    )


class _Eraser:
    def __init__(
        self,
        settings: Settings,
        conn: psycopg.Connection[Any],
        matcher: PersonMatcher,
        result: TopicErasure,
        progress: Progress | None,
    ) -> None:
        self.conn = conn
        self.matcher = matcher
        self.result = result
        self.progress = progress
        self.consumer = range_consumer(settings, "forget")
        self.producer = KafkaProducer(settings.librdkafka(**PRODUCER_DEFAULTS))
        self.admin = admin_client(settings)

    def close(self) -> None:
        self.consumer.close()
        self.producer.flush(30)

    # -- one partition -------------------------------------------------------------
    def partition(self, topic: str, partition: int, wait_s: float) -> int:
        """Erase the person's records from one partition; how many there were."""
        scan = self._scan(topic, partition)
        if not scan.matched:
            return 0
        last = scan.last
        self._wait_for_consumers(topic, partition, last, wait_s)
        self._restore(topic, partition, scan)
        self._delete_prefix(topic, partition, last + 1)
        self.result.erased += len(scan.matched)
        label = f"{topic}[{partition}]"
        self.result.partitions[label] = self.result.partitions.get(label, 0) + len(scan.matched)
        return len(scan.matched)

    def _scan(self, topic: str, partition: int) -> _Scan:
        low, high = watermarks(self.consumer, topic, partition)
        scan = _Scan(low)
        copies: dict[str, int] = {}  # origin → offset of its copy
        for msg in iter_range(self.consumer, topic, partition, low, high - 1):
            headers = msg.headers()
            if self.matcher.record(msg.key(), msg.value(), headers):
                scan.matched.add(msg.offset())
            else:
                origin = restored_origin(headers)
                if origin is not None:
                    copies[origin] = msg.offset()
            self.result.scanned += 1
            if self.progress is not None and self.result.scanned % 1000 == 0:
                self.progress(f"{topic}[{partition}]", self.result.scanned)
        if scan.matched:
            last = scan.last
            scan.copied = {o for o, at in copies.items() if at > last}
        return scan

    def _wait_for_consumers(self, topic: str, partition: int, last: int, wait_s: float) -> None:
        deadline = time.monotonic() + wait_s
        while True:
            with self.conn.transaction():
                rows = self.conn.execute(
                    "SELECT consumer,"
                    " coalesce(max(last_offset) FILTER (WHERE partition = %s), -1)"
                    " FROM applied_offsets WHERE topic = %s GROUP BY consumer ORDER BY 1",
                    (partition, topic),
                ).fetchall()
            behind = [(str(c), int(o)) for c, o in rows if o < last]
            if not behind:
                return
            if time.monotonic() > deadline:
                who = ", ".join(f"{c} at {o}" for c, o in behind)
                raise CDPError(
                    f"{topic}[{partition}] holds this person's records up to offset {last} but"
                    f" not every processor has applied them ({who}) after {wait_s:.0f}s;"
                    " start the processors or raise --wait, then run forget again (the"
                    " person is suppressed already; nothing has been erased from"
                    " PostgreSQL or the lake yet)"
                )
            time.sleep(0.5)

    def _restore(self, topic: str, partition: int, scan: _Scan) -> None:
        last = scan.last
        failures: list[str] = []

        def delivered(err: Any, _msg: Any) -> None:
            if err is not None:
                failures.append(str(err))

        restored = 0
        for msg in iter_range(self.consumer, topic, partition, scan.low, last):
            if msg.offset() in scan.matched:
                continue
            headers = list(msg.headers() or [])
            origin = restored_origin(headers)
            if origin is None:
                origin = f"{topic}:{partition}:{msg.offset()}"
                headers.append((RESTORED_HEADER, origin.encode()))
            if origin in scan.copied:
                continue  # copied by an earlier run that stopped before the delete
            ts_type, ts = msg.timestamp()
            kwargs: dict[str, Any] = {"timestamp": ts} if ts_type and ts > 0 else {}
            self._produce(topic, partition=partition, key=msg.key(), value=msg.value(),
                          headers=headers, on_delivery=delivered, **kwargs)  # fmt: skip
            restored += 1
        if self.producer.flush(60) or failures:
            raise KafkaError(
                f"could not copy {len(failures) or 'some'} record(s) of {topic}[{partition}]"
                f" before erasing ({'; '.join(failures[:3])}); nothing was erased there,"
                " run forget again"
            )
        self.result.restored += restored

    def _produce(self, topic: str, **kwargs: Any) -> None:
        while True:
            try:
                self.producer.produce(topic, **kwargs)
                return
            except BufferError:  # local queue full: let deliveries drain
                self.producer.poll(0.5)

    def _delete_prefix(self, topic: str, partition: int, before: int) -> None:
        futures = self.admin.delete_records(
            [TopicPartition(topic, partition, before)], operation_timeout=30
        )
        for fut in futures.values():
            try:
                fut.result()
            except KafkaException as exc:
                raise KafkaError(
                    f"could not delete {topic}[{partition}] below offset {before}: {exc}"
                ) from exc
