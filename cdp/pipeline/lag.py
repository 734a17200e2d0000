"""How far each processor is behind: the end offsets of its source topics minus the
offsets it applied (from PostgreSQL, the authoritative record, not Kafka commits)."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import psycopg
from confluent_kafka import Consumer

from cdp.config import Settings
from cdp.kafka.watermarks import watermarks
from cdp.store.connect import connect

TopicPartition = tuple[str, int]


def _probe_consumer(settings: Settings) -> Any:
    # never subscribes, so it never joins (or disturbs) the group named here
    return Consumer(settings.librdkafka(**{"group.id": "cdp-lag-probe"}))


def end_offsets(
    settings: Settings, topics: list[str], consumer: Any = None, timeout: float = 60.0
) -> dict[TopicPartition, int]:
    """The high watermark of every partition of ``topics`` (missing topics are skipped).
    ``consumer`` is reused when given (and left open); otherwise one is made and closed."""
    own = consumer is None
    if own:
        consumer = _probe_consumer(settings)
    try:
        out: dict[TopicPartition, int] = {}
        md = consumer.list_topics(timeout=min(10.0, timeout))
        for topic in topics:
            meta = md.topics.get(topic)
            if meta is None:
                continue
            for pid in meta.partitions:
                _, high = watermarks(consumer, topic, pid, timeout=timeout)
                out[(topic, pid)] = high
        return out
    finally:
        if own:
            consumer.close()


def partition_lag(
    settings: Settings,
    conn: psycopg.Connection[Any],
    processor: str,
    topics: list[str],
    consumer: Any = None,
    timeout: float = 60.0,
) -> dict[TopicPartition, int]:
    """Per partition of ``topics``: records not yet applied by ``processor`` with their
    outputs published."""
    ends = end_offsets(settings, topics, consumer, timeout)
    rows = conn.execute(
        "SELECT topic, partition, COALESCE(published_offset, -1) FROM applied_offsets"
        " WHERE consumer = %s",
        (processor,),
    ).fetchall()
    applied = {(t, p): o for t, p, o in rows}
    return {tp: max(0, high - 1 - applied.get(tp, -1)) for tp, high in ends.items()}


def processor_lag(
    settings: Settings, conn: psycopg.Connection[Any], processor: str, topics: list[str]
) -> int:
    """Records in ``topics`` not yet applied by ``processor`` with their outputs
    published (so a processor downstream of it sees everything once this is 0)."""
    return sum(partition_lag(settings, conn, processor, topics).values())


class LagProbe:
    """:func:`partition_lag` of one processor on a long-lived Kafka consumer and
    database connection (re-made after an error), for a metrics scrape. Thread-safe;
    a broker or database outage raises within about ``timeout`` seconds."""

    def __init__(
        self, settings: Settings, processor: str, topics: list[str], timeout: float = 5.0
    ) -> None:
        self.settings = settings
        self.processor = processor
        self.topics = topics
        self.timeout = timeout
        self._lock = threading.Lock()
        self._consumer: Any = None
        self._conn: psycopg.Connection[Any] | None = None

    def __call__(self) -> dict[TopicPartition, int]:
        with self._lock:
            try:
                if self._consumer is None:
                    self._consumer = _probe_consumer(self.settings)
                if self._conn is None or self._conn.closed or self._conn.broken:
                    self._conn = connect(
                        self.settings, role=self.settings.db_role_worker, autocommit=True
                    )
                return partition_lag(
                    self.settings, self._conn, self.processor, self.topics,
                    self._consumer, self.timeout,
                )  # fmt: skip
            except BaseException:
                self._reset()
                raise

    def _reset(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                self._consumer.close()
        self._conn = None
        self._consumer = None

    def close(self) -> None:
        with self._lock:
            self._reset()
