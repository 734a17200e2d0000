"""The batch runner's guarantees against the real broker and database: fenced,
idempotent application; outputs published; permanent errors dead-lettered; transient
ones retried."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import psycopg

from cdp.config import Settings
from cdp.pipeline import fence
from cdp.pipeline.deadletter import decode
from cdp.pipeline.publish import Output
from cdp.pipeline.records import Record
from cdp.pipeline.runner import BatchResult, BatchRunner


class SumProcessor:
    """Adds each record's integer value to a total: applied twice would show."""

    name = "sum"

    def __init__(self, out_topic: str) -> None:
        self.out_topic = out_topic

    def apply(self, conn: psycopg.Connection[Any], records: Sequence[Record]) -> BatchResult:
        result = BatchResult()
        fresh, fenced = fence.split_fenced(fence.load_fences(conn, self.name, records), records)
        for rec in fresh:
            value = orjson.loads(rec.value)
            # a value of "boom" violates the column type: a permanent error
            conn.execute("INSERT INTO sums (v) VALUES (%s)", (value,))
            result.outputs.append(Output(self.out_topic, rec.key, rec.value))
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
