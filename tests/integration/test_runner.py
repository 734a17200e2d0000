"""The batch runner's guarantees against the real broker and database: fenced,
idempotent application; outputs published; permanent errors dead-lettered; transient
ones retried."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import psycopg
import pytest

from cdp.config import Settings
from cdp.pipeline import fence
from cdp.pipeline.deadletter import decode
from cdp.pipeline.publish import Output, Publisher
from cdp.pipeline.records import Record
from cdp.pipeline.runner import BatchResult, BatchRunner


class SumProcessor:
    """Adds each record's integer value to a total: applied twice would show. With
    ``republish``, fenced records have their output published again (as the identity
    processor does)."""

    name = "sum"

    def __init__(self, out_topic: str, republish: bool = False) -> None:
        self.out_topic = out_topic
        self.republish = republish

    def apply(self, conn: psycopg.Connection[Any], records: Sequence[Record]) -> BatchResult:
        result = BatchResult()
        fresh, fenced = fence.split_fenced(fence.load_fences(conn, self.name, records), records)
        for rec in fresh:
            value = orjson.loads(rec.value)
            # a value of "boom" violates the column type: a permanent error
            conn.execute("INSERT INTO sums (v) VALUES (%s)", (value,))
            result.outputs.append(Output(self.out_topic, rec.key, rec.value))
        if self.republish:
            result.outputs += [Output(self.out_topic, r.key, r.value) for r in fenced]
        fence.advance(conn, self.name, records)
        result.count("applied", len(fresh))
        result.count("fenced", len(fenced))
        return result


def _records(topic: str, values: list[Any], start: int = 0) -> list[Record]:
    return [Record(topic, 0, start + i, b"k", orjson.dumps(v)) for i, v in enumerate(values)]


def test_redelivery_applies_nothing_twice(
    settings: Settings, topics: dict[str, str], db: Any, consume: Any
) -> None:
    db.execute("CREATE TABLE sums (v integer NOT NULL)")
    out = settings.topic("actions")
    runner = BatchRunner(settings, SumProcessor(out))
    batch = _records("in", list(range(1, 101)))
    runner.run(batch[:60])
    runner.run(batch)  # redelivery of the first 60 plus 40 new
    runner.run(batch[50:])  # and again
    assert db.execute("SELECT count(*), sum(v) FROM sums").fetchone() == (100, 5050)
    assert runner.totals["applied"] == 100
    published = consume(out, n=100, timeout=30)
    assert len(published) == 100
    assert {orjson.loads(m.value()) for m in published} == set(range(1, 101))
    row = db.execute(
        "SELECT last_offset, published_offset FROM applied_offsets WHERE consumer = 'sum'"
    ).fetchone()
    assert row == (99, 99)
    runner.close()


def test_permanent_error_is_dead_lettered_and_the_rest_applied(
    settings: Settings, topics: dict[str, str], db: Any, consume: Any
) -> None:
    db.execute("CREATE TABLE sums (v integer NOT NULL)")
    runner = BatchRunner(settings, SumProcessor(settings.topic("actions")))
    values: list[Any] = [1, 2, 3, "boom", 5, 6, 7, 8]
    runner.run(_records("in", values))
    assert db.execute("SELECT count(*), sum(v) FROM sums").fetchone() == (7, 32)
    dead = consume(settings.topic("deadletter"), n=1)
    doc = decode(dead[0].value())
    assert doc["reason"] == "store_error"
    assert doc["source"] == {"topic": "in", "partition": 0, "offset": 3}
    assert doc["raw"] == b'"boom"'
    runner.close()


def test_a_dead_letter_is_on_kafka_before_its_fence_moves(
    settings: Settings, topics: dict[str, str], db: Any, consume: Any
) -> None:
    """Fenced first, a worker killed before publishing would leave the record taken
    for applied and its dead letter never sent."""
    db.execute("CREATE TABLE sums (v integer NOT NULL)")
    fences_at_dead_letter: list[int | None] = []

    class Watching(Publisher):
        def publish(self, outputs: Sequence[Output], should_stop: Any = None) -> None:
            if any(o.topic == settings.topic("deadletter") for o in outputs):
                row = db.execute(
                    "SELECT last_offset FROM applied_offsets WHERE consumer = 'sum'"
                ).fetchone()
                fences_at_dead_letter.append(row[0] if row else None)
            super().publish(outputs, should_stop)

    runner = BatchRunner(
        settings, SumProcessor(settings.topic("actions")), Watching(settings, "watching")
    )
    result = runner.run(_records("in", [1, "boom", 3, 4]))
    assert len(result.dead_letters) == 1
    assert fences_at_dead_letter and all(f is None or f < 1 for f in fences_at_dead_letter)
    assert len(fences_at_dead_letter) == 1  # sent once, not again with the batch
    assert len(consume(settings.topic("deadletter"), n=2, timeout=5)) == 1
    assert db.execute("SELECT last_offset FROM applied_offsets").fetchone() == (3,)
    runner.close()


def test_postgres_gone_before_the_published_mark_stops_nothing(
    settings: Settings, topics: dict[str, str], db: Any
) -> None:
    """The mark is best effort: PostgreSQL unreachable right after the publish must not
    make the batch raise (the worker would exit); the next batch re-publishes."""
    from pydantic import SecretStr

    db.execute("CREATE TABLE sums (v integer NOT NULL)")
    down = settings.model_copy(
        update={"database_url": SecretStr("postgresql://cdp:cdp@127.0.0.1:1/cdp")}
    )

    class PostgresDiesDuringPublish(Publisher):
        def publish(self, outputs: Sequence[Output], should_stop: Any = None) -> None:
            super().publish(outputs, should_stop)
            runner._drop_connection()
            runner.settings = down

    runner = BatchRunner(
        settings, SumProcessor(settings.topic("actions")), PostgresDiesDuringPublish(settings, "p")
    )
    result = runner.run(_records("in", [1, 2]))
    assert result.stats["applied"] == 2
    row = db.execute("SELECT last_offset, published_offset FROM applied_offsets").fetchone()
    assert row == (1, None)
    runner.close()


def test_an_error_the_data_did_not_cause_waits_instead_of_dead_lettering(
    settings: Settings, topics: dict[str, str], db: Any
) -> None:
    """A missing table (workers upgraded before `cdp migrate`, say) fails every record
    alike: the runner retries until it is fixed rather than dead-letter the batch."""
    import threading
    import time

    runner = BatchRunner(settings, SumProcessor(settings.topic("actions")))
    results: list[BatchResult] = []
    thread = threading.Thread(target=lambda: results.append(runner.run(_records("in", [1, 2, 3]))))
    thread.start()

    def blocked() -> float:
        value = runner.metrics.registry.get_sample_value(
            "cdp_worker_store_blocked_total", {"processor": "sum"}
        )
        return value or 0.0

    deadline = time.monotonic() + 30
    while blocked() < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert blocked() >= 2 and not results  # retried, still waiting
    db.execute("CREATE TABLE sums (v integer NOT NULL)")
    thread.join(60)
    assert results and not results[0].dead_letters
    assert db.execute("SELECT count(*), sum(v) FROM sums").fetchone() == (3, 6)
    runner.close()


def test_database_outage_is_retried_until_it_comes_back(
    settings: Settings, topics: dict[str, str], db: Any
) -> None:
    import threading
    import time

    db.execute("CREATE TABLE sums (v integer NOT NULL)")
    runner = BatchRunner(settings, SumProcessor(settings.topic("actions")))
    runner.run(_records("in", [1]))
    # Lock the table so the next batch blocks, then kill the runner's backend:
    # the runner must see a connection error, reconnect and apply exactly once.
    locker = psycopg.connect(settings.dsn(), options=f"-c search_path={settings.database_schema}")
    locker.execute("LOCK TABLE sums IN ACCESS EXCLUSIVE MODE")
    done = threading.Event()

    def run() -> None:
        runner.run(_records("in", [10, 20], start=1))
        done.set()

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(1.0)
    db.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    locker.rollback()
    locker.close()
    assert done.wait(30)
    thread.join()
    assert db.execute("SELECT count(*), sum(v) FROM sums").fetchone() == (3, 31)
    runner.close()


def _on_kafka(settings: Settings, topic: str, values: list[Any]) -> list[Record]:
    """Produce ``values`` to ``topic[0]``; returns them as the consumer would see them."""
    from confluent_kafka import Producer

    producer = Producer(settings.librdkafka(**{"enable.idempotence": True, "acks": "all"}))
    for v in values:
        producer.produce(topic, value=orjson.dumps(v), key=b"k", partition=0)
    assert producer.flush(30) == 0
    from cdp.kafka.reader import range_consumer, read_range

    consumer = range_consumer(settings, "test")
    try:
        return read_range(consumer, topic, 0, None, len(values) - 1)
    finally:
        consumer.close()


def test_records_the_consumer_skipped_are_read_back_not_fenced_away(
    settings: Settings, topics: dict[str, str], db: Any
) -> None:
    """A consumer that skips records (a client bug, a seek or reset past them) must not
    make the fence move past them: the runner reads them back from Kafka."""
    db.execute("CREATE TABLE sums (v integer NOT NULL)")
    topic = settings.topic("touchpoints.web")
    records = _on_kafka(settings, topic, list(range(1, 21)))
    assert [r.offset for r in records] == list(range(20))
    runner = BatchRunner(settings, SumProcessor(settings.topic("actions")))
    runner.run(records[:5])
    # a hole right after the fence (offsets 5-7), and one inside the batch (11-12)
    result = runner.run(records[8:11] + records[13:16])
    assert result.stats["refetched"] == 5
    runner.run(records[16:])
    assert db.execute("SELECT count(*), sum(v) FROM sums").fetchone() == (20, 210)
    # redelivery of everything changes nothing and reads nothing back
    again = runner.run(records)
    assert "refetched" not in again.stats and again.stats["fenced"] == 20
    assert db.execute("SELECT count(*), sum(v) FROM sums").fetchone() == (20, 210)
    runner.close()


def test_a_first_batch_that_does_not_start_at_the_log_start_is_completed(
    settings: Settings, topics: dict[str, str], db: Any
) -> None:
    db.execute("CREATE TABLE sums (v integer NOT NULL)")
    topic = settings.topic("touchpoints.app")
    records = _on_kafka(settings, topic, [1, 2, 3, 4])
    runner = BatchRunner(settings, SumProcessor(settings.topic("actions")))
    result = runner.run(records[2:])  # no fence yet, and offsets 0-1 never delivered
    assert result.stats["refetched"] == 2
    assert db.execute("SELECT count(*), sum(v) FROM sums").fetchone() == (4, 10)
    runner.close()


class KilledBeforePublish(Exception):
    pass


class DyingPublisher(Publisher):
    """A worker SIGKILLed after its commit, before its outputs reached Kafka."""

    def publish(self, outputs: Sequence[Output], should_stop: Any = None) -> None:
        raise KilledBeforePublish


def test_records_applied_but_never_published_are_read_back_and_republished(
    settings: Settings, topics: dict[str, str], db: Any, consume: Any
) -> None:
    """The next owner's consumer can start past a batch that was applied but never
    published (Faust acks messages it skips around a rebalance and may commit past a
    batch in flight): the runner reads that batch back from Kafka, so its outputs
    are published, and applies nothing twice."""
    db.execute("CREATE TABLE sums (v integer NOT NULL)")
    topic, out = settings.topic("touchpoints.store"), settings.topic("actions")
    records = _on_kafka(settings, topic, list(range(1, 11)))
    dying = BatchRunner(
        settings, SumProcessor(out, republish=True), DyingPublisher(settings, "dying")
    )
    with pytest.raises(KilledBeforePublish):
        dying.run(records[:4])
    dying.close()
    assert db.execute("SELECT last_offset, published_offset FROM applied_offsets").fetchone() == (
        3,
        None,
    )
    runner = BatchRunner(settings, SumProcessor(out, republish=True))
    result = runner.run(records[6:])  # the consumer starts at offset 6
    assert result.stats["refetched"] == 6 and result.stats["fenced"] == 4
    assert db.execute("SELECT count(*), sum(v) FROM sums").fetchone() == (10, 55)
    assert sorted(orjson.loads(m.value()) for m in consume(out, n=10)) == list(range(1, 11))
    assert db.execute("SELECT last_offset, published_offset FROM applied_offsets").fetchone() == (
        9,
        9,
    )
    runner.close()


def test_a_range_read_never_passes_a_short_answer_for_a_whole_one(
    settings: Settings, topics: dict[str, str]
) -> None:
    """The refetch marks a range as read; a broker whose end offset lags (just
    restarted) must make it retry, not return the part it has."""
    from cdp.errors import KafkaError
    from cdp.kafka.reader import range_consumer, read_range

    topic = settings.topic("touchpoints.service")
    assert [r.offset for r in _on_kafka(settings, topic, [1, 2, 3])] == [0, 1, 2]
    consumer = range_consumer(settings, "test")
    try:
        assert [r.offset for r in read_range(consumer, topic, 0, 1, 2)] == [1, 2]
        with pytest.raises(KafkaError, match="not yet past offset 3"):
            read_range(consumer, topic, 0, 1, 3)
    finally:
        consumer.close()
