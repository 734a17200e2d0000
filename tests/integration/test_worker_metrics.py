"""A real `cdp worker --processor identity` serves Prometheus metrics on
CDP_METRICS_PORT, and they agree with what was produced and what PostgreSQL holds."""

from __future__ import annotations

import socket
import urllib.request
from collections import Counter
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from cdp.config import Settings
from cdp.events.envelope import CHANNELS
from cdp.kafka.producer import Producer
from tests.integration.test_e2e import SCENARIO
from tests.integration.workers import Workers, wait_until

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scrape(port: int) -> Samples:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=15) as resp:
            text = resp.read().decode()
    except OSError:
        return {}
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _total(samples: Samples, sample: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, lbls), v in samples.items() if n == sample and want <= lbls)


def test_identity_worker_metrics(
    settings: Settings, topics: dict[str, str], workers: Workers, db: Any
) -> None:
    port = _free_port()
    workers.start("identity", env={"CDP_METRICS_PORT": str(port), "CDP_METRICS_HOST": "127.0.0.1"})
    wait_until(lambda: bool(_scrape(port)), timeout=60, what="the metrics endpoint")

    web = settings.topic("touchpoints.web")
    with Producer(settings, source="test") as producer:
        producer.send_many(SCENARIO)
        producer.send_raw(web, b"x", b"{not json")
        # a record with no value at all (a tombstone): any Kafka client can write one
        producer.send_raw(web, b"x", None)  # type: ignore[arg-type]
    produced = len(SCENARIO) + 2
    workers.wait_drained(["identity"])

    samples: Samples = {}

    def caught_up() -> bool:
        nonlocal samples
        samples = _scrape(port)
        return _total(samples, "cdp_worker_records_in_total") >= produced

    wait_until(caught_up, timeout=30, what=f"records_in to reach {produced}")

    per_topic = Counter(settings.topic(f"touchpoints.{e['channel']}") for e in SCENARIO)
    per_topic[web] += 2
    for topic, n in per_topic.items():
        assert _total(samples, "cdp_worker_records_in_total", topic=topic) == n, topic
    assert _total(samples, "cdp_worker_records_in_total", processor="identity") == produced

    assert _total(samples, "cdp_worker_dead_lettered_total", reason="invalid_json", topic=web) == 2
    assert (
        _total(samples, "cdp_worker_outputs_published_total", topic=settings.topic("deadletter"))
        == 2
    )
    resolved = settings.topic("touchpoints.resolved")
    assert _total(samples, "cdp_worker_outputs_published_total", topic=resolved) >= len(SCENARIO)

    # the processor's own counts, with no per-processor metrics code
    merges = db.execute("SELECT count(*) FROM merges").fetchone()[0]
    assert _total(samples, "cdp_worker_batch_counts_total", name="merges") == merges
    assert _total(samples, "cdp_worker_batch_counts_total", name="resolved") > 0

    assert _total(samples, "cdp_worker_batch_size_sum") == produced
    assert _total(samples, "cdp_worker_batch_size_count") >= 1
    assert _total(samples, "cdp_worker_apply_seconds_count") > 0
    assert _total(samples, "cdp_worker_batch_seconds_count") > 0
    assert _total(samples, "cdp_worker_batch_seconds_sum") > 0

    # consumer lag per source partition: every one is reported, and all are 0 when drained
    partitions = {
        (settings.topic(f"touchpoints.{ch}"), str(p)) for ch in CHANNELS for p in range(3)
    }

    def lag_is_zero() -> bool:
        nonlocal samples
        samples = _scrape(port)
        lag = {
            (d["topic"], d["partition"]): v
            for (n, lbls), v in samples.items()
            if n == "cdp_worker_consumer_lag"
            for d in [dict(lbls)]
        }
        return set(lag) == partitions and not any(lag.values())

    wait_until(lag_is_zero, timeout=30, what="consumer lag 0 on every source partition")
    assert _total(samples, "cdp_worker_lag_errors_total") == 0

    # Faust keeps its data under CDP_STATE_DIR, not where the worker was started
    assert not list(workers.log_dir.glob("*-data"))
    assert (settings.state_dir / "faust" / f"{settings.topic_prefix}cdp-identity").is_dir()
