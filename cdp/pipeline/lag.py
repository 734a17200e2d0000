"""How far each processor is behind: the end offsets of its source topics minus the
offsets it applied (from PostgreSQL, the authoritative record, not Kafka commits)."""

from __future__ import annotations

from typing import Any

import psycopg
from confluent_kafka import Consumer

from cdp.config import Settings
from cdp.kafka.watermarks import watermarks


def end_offsets(settings: Settings, topics: list[str]) -> dict[tuple[str, int], int]:
    consumer = Consumer(settings.librdkafka(**{"group.id": "cdp-lag-probe"}))
    try:
        out: dict[tuple[str, int], int] = {}
        md = consumer.list_topics(timeout=10)
        for topic in topics:
            meta = md.topics.get(topic)
            if meta is None:
                continue
            for pid in meta.partitions:
                _, high = watermarks(consumer, topic, pid)
                out[(topic, pid)] = high
        return out
    finally:
        consumer.close()


def processor_lag(
    settings: Settings, conn: psycopg.Connection[Any], processor: str, topics: list[str]
) -> int:
    """Records in ``topics`` not yet applied by ``processor`` with their outputs
    published (so a processor downstream of it sees everything once this is 0)."""
    ends = end_offsets(settings, topics)
    rows = conn.execute(
        "SELECT topic, partition, COALESCE(published_offset, -1) FROM applied_offsets"
        " WHERE consumer = %s",
        (processor,),
    ).fetchall()
    applied = {(t, p): o for t, p, o in rows}
    return sum(max(0, high - 1 - applied.get(tp, -1)) for tp, high in ends.items())
