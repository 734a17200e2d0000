"""Every way in lands on Kafka as documented and every kind of bad input lands in the
dead-letter topic with its reason, while the good events around it are applied."""

from __future__ import annotations

import base64
import hashlib
import threading
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Producer as RawProducer

from cdp.config import Settings
from cdp.events import MAX_DEPTH
from cdp.identity.processor import IdentityProcessor
from cdp.kafka.reader import read_topic
from cdp.pipeline.deadletter import RAW_KEPT, decode
from cdp.pipeline.records import Record
from cdp.pipeline.runner import BatchResult, BatchRunner


def good(mid: str, **over: Any) -> dict[str, Any]:
    ev = {"messageId": mid, "type": "track", "event": "Product Viewed", "channel": "web",
          "timestamp": "2026-03-01T10:00:00Z", "anonymousId": f"anon-{mid}"}  # fmt: skip
    ev.update(over)
    return ev


def deep() -> dict[str, Any]:
    nested: Any = 1
    for _ in range(MAX_DEPTH + 2):
        nested = {"k": nested}
    return good("deep", properties=nested)


BAD: dict[str, bytes] = {
    "invalid_json": b'{"messageId": "x",',
    "invalid_utf8": b'{"messageId": "\xff\xfe"}',
    "nul_byte": orjson.dumps(good("nul", event="a\x00b")),
    "missing_field": orjson.dumps({k: v for k, v in good("m").items() if k != "messageId"}),
    "unknown_channel": orjson.dumps(good("ch", channel="fax")),
    "wrong_type": orjson.dumps(good("wt", properties=["not", "an", "object"])),
    "too_deep": orjson.dumps(deep()),
    "too_large": orjson.dumps(good("big", properties={"blob": "x" * 40_000})),
}


def records_of(settings: Settings, topic: str) -> list[Record]:
    return [
        Record(m.topic(), m.partition(), m.offset(), m.key(), m.value())
        for m in read_topic(settings, topic)
    ]


def test_bad_input_is_dead_lettered_with_reasons_and_the_rest_applied(
    settings: Settings, topics: dict[str, str], db: Any
) -> None:
    topic = settings.topic("touchpoints.web")
    raw = RawProducer(settings.librdkafka())
    # a plain Kafka client writing the documented JSON, around every kind of bad input
    raw.produce(topic, orjson.dumps(good("g1", identifiers={"email": "null"})), b"k")
    for value in BAD.values():
        raw.produce(topic, value, b"k")
    raw.produce(topic, orjson.dumps(good("g2")), b"k")
    raw.produce(topic, orjson.dumps(good("g2")), b"k")  # a duplicate
    raw.flush(10)

    runner = BatchRunner(settings, IdentityProcessor(settings))
    result = runner.run(records_of(settings, topic))
    runner.close()

    dead = [decode(m.value()) for m in read_topic(settings, settings.topic("deadletter"))]
    assert sorted(d["reason"] for d in dead) == sorted(BAD)
    for d in dead:
        assert d["raw"] == BAD[d["reason"]], "the original bytes are kept"
        assert d["source"]["topic"] == topic and d["detail"]
    # the junk email in g1 is ignored and counted; the event itself is applied
    assert result.stats["resolved"] == 2 and result.stats["duplicates"] == 1
    assert db.execute(
        "SELECT count FROM identity_counters WHERE reason = 'blocked'"
    ).fetchone() == (1,)
    resolved = [
        orjson.loads(m.value())
        for m in read_topic(settings, settings.topic("touchpoints.resolved"))
    ]
    assert sorted(r["event"]["messageId"] for r in resolved) == ["g1", "g2"]


def test_a_record_near_kafkas_size_limit_is_dead_lettered_cut(
    settings: Settings, topics: dict[str, str], cli: Any
) -> None:
    """Any Kafka client can write a value of nearly 1 MiB; in base64 its dead letter
    would be over the broker's limit, and the partition would wait on it forever. The
    dead letter keeps the first RAW_KEPT bytes, the full size and a hash."""
    topic = settings.topic("touchpoints.web")
    huge = orjson.dumps(good("huge", properties={"blob": "x" * 900_000}))
    raw = RawProducer(settings.librdkafka())
    raw.produce(topic, huge, b"k")
    raw.produce(topic, orjson.dumps(good("after")), b"k")
    raw.flush(10)

    runner = BatchRunner(settings, IdentityProcessor(settings))
    results: list[BatchResult] = []
    worker = threading.Thread(
        target=lambda: results.append(runner.run(records_of(settings, topic))), daemon=True
    )
    worker.start()
    worker.join(120)
    assert results, "the batch is stuck publishing a dead letter the broker refuses"
    runner.close()
    assert results[0].stats["resolved"] == 1

    [dead] = [decode(m.value()) for m in read_topic(settings, settings.topic("deadletter"))]
    assert dead["reason"] == "too_large" and dead["truncated"]
    assert len(dead["raw"]) == RAW_KEPT and huge.startswith(dead["raw"])
    assert dead["raw_bytes"] == len(huge)
    assert dead["raw_sha256"] == hashlib.sha256(huge).hexdigest()
    assert dead["key"] == b"k" and "key_bytes" not in dead

    replay = cli("dlq", "replay")
    assert replay.exit_code == 0, replay.output
    assert "replayed 0 record(s)" in replay.output and "left out 1 cut record" in replay.output
    assert len(records_of(settings, topic)) == 2, "a cut record is not replayed"


def test_cdp_produce_sends_jsonl_and_reports_bad_lines(
    settings: Settings, topics: dict[str, str], cli: Any, tmp_path: Path
) -> None:
    path = tmp_path / "events.jsonl"
    lines = [orjson.dumps(good(f"p{i}", channel="app")) for i in range(20)]
    path.write_bytes(
        b"\n".join([*lines, b"{broken", orjson.dumps(good("x", channel="tv"))]) + b"\n"
    )
    result = cli("produce", str(path), "--json")
    assert result.exit_code == 2, result.output  # some lines were invalid
    summary = orjson.loads(result.stdout)
    assert summary["sent"] == 20 and summary["invalid"] == 2
    assert {e["reason"] for e in summary["errors"]} == {"invalid_json", "unknown_channel"}
    got = {
        orjson.loads(m.value())["messageId"]
        for m in read_topic(settings, settings.topic("touchpoints.app"))
    }
    assert got == {f"p{i}" for i in range(20)}


def test_dlq_list_and_replay(settings: Settings, topics: dict[str, str], cli: Any) -> None:
    topic = settings.topic("touchpoints.store")
    raw = RawProducer(settings.librdkafka())
    raw.produce(topic, b"{oops", b"key-1")
    raw.produce(topic, orjson.dumps(good("c1", channel="fax")), b"key-2")
    raw.flush(10)
    runner = BatchRunner(settings, IdentityProcessor(settings))
    runner.run(records_of(settings, topic))
    runner.close()

    listed = cli("dlq", "list", "--json")
    assert listed.exit_code == 0, listed.output
    entries = orjson.loads(listed.stdout)
    assert {e["reason"] for e in entries} == {"invalid_json", "unknown_channel"}

    replay = cli("dlq", "replay", "--reason", "invalid_json")
    assert replay.exit_code == 0, replay.output
    again = [(m.key(), m.value()) for m in read_topic(settings, topic)]
    assert len(again) == 3, "only the invalid_json entry was replayed"
    assert again.count((b"key-1", b"{oops")) == 2, "replayed unchanged, with its key"
    assert {base64.b64decode(e["raw_b64"]) for e in entries} == {
        b"{oops",
        orjson.dumps(good("c1", channel="fax")),
    }
