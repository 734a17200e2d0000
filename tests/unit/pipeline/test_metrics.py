"""Worker metrics: what a batch records, the lag gauge's cache, the HTTP endpoint, and
that the batch runner records every batch in one place."""

from __future__ import annotations

import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from prometheus_client import generate_latest

from cdp.config import Settings
from cdp.errors import TransientStoreError
from cdp.pipeline import runner as runner_module
from cdp.pipeline.deadletter import DeadLetter
from cdp.pipeline.metrics import LagCollector, WorkerMetrics
from cdp.pipeline.publish import Output
from cdp.pipeline.records import Record
from cdp.pipeline.runner import BatchResult, BatchRunner
from streams.registry import PROCESSORS


def _records(topic: str, n: int, start: int = 0) -> list[Record]:
    return [Record(topic, 0, start + i, None, b"{}") for i in range(n)]


def _value(m: WorkerMetrics, sample: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(sample, {"processor": m.processor, **labels})


def test_a_batch_records_topics_dead_letters_counts_and_latencies() -> None:
    m = WorkerMetrics("identity")
    records = _records("cdp.touchpoints.web", 3) + _records("cdp.touchpoints.store", 2)
    result = BatchResult()
    result.dead_letters.append(DeadLetter(records[0], "invalid_json", "", "identity"))
    result.count("merges", 2)
    result.count("conflicts", 0)
    outputs = [Output("cdp.touchpoints.resolved", None, b"")] * 4
    outputs.append(Output("cdp.deadletter", None, b""))
    m.observe_batch(records, result, outputs, 0.02, 0.05)
    m.observe_batch(records[:1], BatchResult(stats={"merges": 1}), [], 0.01, 0.01)

    assert _value(m, "cdp_worker_records_in_total", topic="cdp.touchpoints.web") == 4
    assert _value(m, "cdp_worker_records_in_total", topic="cdp.touchpoints.store") == 2
    assert _value(m, "cdp_worker_outputs_published_total", topic="cdp.touchpoints.resolved") == 4
    assert _value(m, "cdp_worker_outputs_published_total", topic="cdp.deadletter") == 1
    assert (
        _value(
            m, "cdp_worker_dead_lettered_total", reason="invalid_json", topic="cdp.touchpoints.web"
        )
        == 1
    )
    assert _value(m, "cdp_worker_batch_counts_total", name="merges") == 3
    assert _value(m, "cdp_worker_batch_counts_total", name="conflicts") == 0
    assert _value(m, "cdp_worker_batch_size_count") == 2
    assert _value(m, "cdp_worker_batch_size_sum") == 6
    assert _value(m, "cdp_worker_apply_seconds_count") == 2
    assert _value(m, "cdp_worker_batch_seconds_sum") == pytest.approx(0.06)


def test_recording_never_raises() -> None:
    m = WorkerMetrics("journey")
    m.observe_batch([], BatchResult(stats={"odd": -1}), [], 0.0, 0.0)
    assert _value(m, "cdp_worker_batch_counts_total", name="odd") == 0
    m.observe_batch(None, BatchResult(), [], 0.0, 0.0)  # type: ignore[arg-type]


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_lag_is_computed_at_most_once_per_interval_and_failures_are_counted() -> None:
    calls: list[int] = []
    answers: list[Mapping[tuple[str, int], int] | Exception] = [
        {("cdp.touchpoints.resolved", 0): 5, ("cdp.touchpoints.resolved", 1): 0},
        RuntimeError("broker down"),
        {("cdp.touchpoints.resolved", 0): 0},
    ]

    def source() -> Mapping[tuple[str, int], int]:
        calls.append(1)
        answer = answers[len(calls) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    clock = _Clock()
    m = WorkerMetrics("journey")
    m.registry.register(LagCollector("journey", source, min_interval_s=5.0, clock=clock))

    def lag(partition: int) -> float | None:
        return _value(
            m, "cdp_worker_consumer_lag", topic="cdp.touchpoints.resolved", partition=str(partition)
        )

    assert (lag(0), lag(1)) == (5, 0)
    clock.now += 4
    assert lag(0) == 5 and len(calls) == 1, "cached within the interval"
    clock.now += 1
    assert lag(0) is None, "no stale numbers when the probe fails"
    assert _value(m, "cdp_worker_lag_errors_total") == 1
    clock.now += 5
    assert lag(0) == 0 and lag(1) is None
    assert len(calls) == 3


def test_the_registry_is_served_over_http() -> None:
    m = WorkerMetrics("archive", lag=lambda: {("t", 0): 7})
    m.observe_batch(_records("t", 2), BatchResult(), [], 0.01, 0.02)
    port = m.serve(0, "127.0.0.1")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        body = resp.read().decode()
    assert 'cdp_worker_records_in_total{processor="archive",topic="t"} 2.0' in body
    assert 'cdp_worker_consumer_lag{partition="0",processor="archive",topic="t"} 7.0' in body
    assert body == generate_latest(m.registry).decode()


class _Processor:
    name = "identity"

    def apply(self, conn: Any, records: Sequence[Record]) -> BatchResult:
        raise AssertionError("not called")


class _Publisher:
    def __init__(self) -> None:
        self.published: list[Output] = []

    def publish(self, outputs: Sequence[Output], should_stop: Any = None) -> None:
        self.published += outputs


def test_the_runner_records_every_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    publisher = _Publisher()
    runner = BatchRunner(Settings(), _Processor(), publisher=publisher)  # type: ignore[arg-type]
    records = _records("cdp.touchpoints.web", 3)
    failures = [TransientStoreError("server restarting")]

    def apply_once(batch: Sequence[Record], _part_of_batch: bool) -> BatchResult:
        if failures:
            raise failures.pop()
        result = BatchResult(outputs=[Output("cdp.touchpoints.resolved", None, b"")])
        result.dead_letters.append(DeadLetter(batch[1], "invalid_envelope", "", "identity"))
        result.count("duplicates")
        return result

    monkeypatch.setattr(runner, "_apply_once", apply_once)
    monkeypatch.setattr(runner, "_mark_published", lambda _records: None)
    monkeypatch.setattr(runner_module.time, "sleep", lambda _s: None)
    runner.run(records)

    m = runner.metrics
    assert [o.topic for o in publisher.published] == [
        "cdp.touchpoints.resolved",
        runner.deadletter_topic,
    ]
    assert _value(m, "cdp_worker_records_in_total", topic="cdp.touchpoints.web") == 3
    assert _value(m, "cdp_worker_outputs_published_total", topic=runner.deadletter_topic) == 1
    assert (
        _value(
            m,
            "cdp_worker_dead_lettered_total",
            reason="invalid_envelope",
            topic="cdp.touchpoints.web",
        )
        == 1
    )
    assert _value(m, "cdp_worker_batch_counts_total", name="duplicates") == 1
    assert _value(m, "cdp_worker_store_retries_total") == 1
    assert _value(m, "cdp_worker_batch_seconds_count") == 1


def test_supervised_children_get_consecutive_metrics_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    from cdp.cli.worker import _child_env
    from cdp.config import load_settings

    monkeypatch.delenv("CDP_METRICS_PORT", raising=False)
    load_settings.cache_clear()
    try:
        assert _child_env("identity") is None, "metrics off by default: children inherit that"
        monkeypatch.setenv("CDP_METRICS_PORT", "9400")
        load_settings.cache_clear()
        ports = [_child_env(n)["CDP_METRICS_PORT"] for n in PROCESSORS]  # type: ignore[index]
        assert ports == ["9400", "9401", "9402", "9403"][: len(PROCESSORS)]
        assert list(PROCESSORS)[:3] == ["identity", "journey", "archive"]
    finally:
        load_settings.cache_clear()
