"""The foundation works against the real components."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition

from cdp.config import Settings
from cdp.errors import ValidationError
from cdp.kafka.producer import PRODUCER_DEFAULTS, Producer
from cdp.kafka.topics import create_topics, existing_topics
from cdp.stack import Stack
from cdp.store.migrate import migrate


def _event(**over: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "messageId": uuid.uuid4().hex,
        "type": "track",
        "event": "Product Viewed",
        "channel": "web",
        "timestamp": "2026-03-01T10:00:00+01:00",
        "anonymousId": "anon-1",
        "properties": {"product_id": "sku-1"},
    }
    ev.update(over)
    return ev


def test_status_reports_both_components(services: Settings) -> None:
    status = Stack(services).status()
    if status["external"]:
        pytest.skip("services come from the environment; no local stack to report")
    assert status["kafka"]["running"] is True
    assert status["kafka"]["bootstrap"] == f"127.0.0.1:{services.kafka_port}"
    assert status["postgres"]["running"] is True
    assert "***" in status["postgres"]["url"]


def test_up_is_idempotent(services: Settings) -> None:
    stack = Stack(services)
    before = stack.status()
    stack.up()
    assert stack.status() == before


def test_topics_create_twice_changes_nothing(settings: Settings) -> None:
    first = create_topics(settings)
    assert set(first.values()) == {"created"}
    assert set(create_topics(settings).values()) == {"exists"}
    have = existing_topics(settings)
    assert have[settings.topic("touchpoints.store")] == settings.topic_partitions
    assert have[settings.topic("deadletter")] == 1


def test_topics_are_writable_when_create_returns(settings: Settings) -> None:
    """Every new partition's leader serves it at once: one ListOffsets each, no retry
    (a producer started in the moment before loses records to KAFKA-15591)."""
    created = create_topics(settings)
    consumer = Consumer(settings.librdkafka(**{"group.id": "writable-check"}))
    try:
        for topic in created:
            for partition in range(existing_topics(settings)[topic]):
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=5
                )
                assert (low, high) == (0, 0)
    finally:
        consumer.close()


def test_producer_keeps_one_request_in_flight() -> None:
    # more lets a request refused by a leader not yet ready be overtaken: KAFKA-15591
    assert PRODUCER_DEFAULTS["max.in.flight.requests.per.connection"] == 1
    assert PRODUCER_DEFAULTS["enable.idempotence"] is True


def test_migrate_is_idempotent(db: Any) -> None:
    assert migrate(db) == []
    tables = {r[0] for r in db.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
    )}  # fmt: skip
    assert {"applied_offsets", "identities", "journey", "transitions"} <= tables


def test_producer_round_trip(settings: Settings, topics: dict[str, str], consume: Any) -> None:
    events = [_event(channel="store", identifiers={"loyalty_card": f"1234 {i}"}) for i in range(50)]
    with Producer(settings, source="test") as producer:
        assert producer.send_many(events) == 50
    assert producer.delivered == 50
    records = consume(settings.topic("touchpoints.store"), n=50)
    assert len(records) == 50
    got = {orjson.loads(r.value())["messageId"] for r in records}
    assert got == {e["messageId"] for e in events}
    first = records[0]
    assert first.key().decode().startswith("loyalty_card:")
    headers = dict(first.headers())
    assert headers["schema_version"] == b"1" and headers["source"] == b"test"


def test_producer_rejects_invalid_before_sending(settings: Settings) -> None:
    with Producer(settings) as producer, pytest.raises(ValidationError) as err:
        producer.send(_event(channel="tv"))
    assert err.value.reason == "unknown_channel"


def test_delivery_failure_is_reported(settings: Settings) -> None:
    from cdp.kafka.producer import DeliveryError

    producer = Producer(settings, config={"message.timeout.ms": 2000})
    producer.send_raw(settings.topic("no-such-topic"), b"k", b"{}")
    with pytest.raises(DeliveryError):
        producer.flush(timeout=10)


def test_up_twice_then_down_leaves_no_process() -> None:
    import os
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path

    from tests.conftest import _free_port

    if os.environ.get("CDP_KAFKA_BOOTSTRAP"):
        pytest.skip("services come from the environment; no local stack to start")
    # not pytest's tmp dir: pytest resets /tmp/pytest-of-<user> to 0700, which would
    # lock the unprivileged postgres user out of its data directory
    state = Path(tempfile.mkdtemp(prefix="cdp-test-stack-", dir="/tmp"))
    state.chmod(0o755)
    settings = Settings(
        state_dir=state, kafka_port=_free_port(), kafka_controller_port=_free_port(),
        postgres_port=_free_port(), kafka_heap="512m",
    )  # fmt: skip
    stack = Stack(settings)
    try:
        stack.up()
        stack.up()  # idempotent: nothing new starts
        status = stack.status()
        assert status["kafka"]["running"] and status["postgres"]["running"]
    finally:
        stack.down()
        shutil.rmtree(state, ignore_errors=True)
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(state) not in ps, "a process of the stopped stack is still running"
    assert stack.status()["kafka"]["running"] is False
    assert stack.status()["postgres"]["running"] is False
