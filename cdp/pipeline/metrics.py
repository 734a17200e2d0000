"""Prometheus metrics of one stream-processor worker, on its own registry (several
runners in one process, e.g. in tests, never clash).

Everything is recorded in one place, :class:`cdp.pipeline.runner.BatchRunner`, so a
processor gets its metrics without code of its own: the counts it puts in
``BatchResult.stats`` (merges, conflicts, duplicates, fenced, decided_* ...) appear as
``cdp_worker_batch_counts_total{name=...}``. ``cdp worker`` serves the registry over
HTTP when ``CDP_METRICS_PORT`` is set (see :meth:`WorkerMetrics.serve`).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from cdp.pipeline.publish import Output
from cdp.pipeline.records import Record

if TYPE_CHECKING:
    from cdp.pipeline.runner import BatchResult

log = logging.getLogger(__name__)

# Records per batch: Faust hands over up to streams.app.BATCH_MAX (2000); a bisected
# batch is still one batch.
BATCH_SIZE_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2000, 5000)
SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

# Per (topic, partition): records not yet applied with their outputs published.
LagSource = Callable[[], Mapping[tuple[str, int], int]]


class LagCollector:
    """``cdp_worker_consumer_lag{topic,partition}``, computed on scrape by ``source``
    (e.g. :class:`cdp.pipeline.lag.LagProbe`) at most once per ``min_interval_s``:
    scrapes in between get the cached values. When ``source`` fails the gauge is left
    out of that scrape (no stale numbers) and ``cdp_worker_lag_errors_total`` counts it.
    """

    def __init__(
        self,
        processor: str,
        source: LagSource,
        min_interval_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.processor = processor
        self.source = source
        self.min_interval_s = min_interval_s
        self.clock = clock
        self._lock = threading.Lock()
        self._at: float | None = None
        self._values: dict[tuple[str, int], int] = {}
        self._errors = 0

    def _refresh(self) -> dict[tuple[str, int], int]:
        with self._lock:
            now = self.clock()
            if self._at is None or now - self._at >= self.min_interval_s:
                self._at = now
                try:
                    self._values = dict(self.source())
                except Exception as exc:  # a scrape must answer even when Kafka is down
                    self._values = {}
                    self._errors += 1
                    log.warning("processor=%s consumer lag unavailable: %s", self.processor, exc)
            return self._values

    def _families(self) -> tuple[GaugeMetricFamily, CounterMetricFamily]:
        lag = GaugeMetricFamily(
            "cdp_worker_consumer_lag",
            "Records of a source partition not yet applied with their outputs published "
            "(end offset - 1 - published offset in applied_offsets), for the whole "
            "consumer group.",
            labels=["processor", "topic", "partition"],
        )
        errors = CounterMetricFamily(
            "cdp_worker_lag_errors",
            "Scrapes whose consumer lag could not be computed (broker or database down).",
            labels=["processor"],
        )
        return lag, errors

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        values = self._refresh()
        lag, errors = self._families()
        for (topic, partition), n in sorted(values.items()):
            lag.add_metric([self.processor, topic, str(partition)], n)
        errors.add_metric([self.processor], self._errors)
        return [lag, errors] if values else [errors]


class WorkerMetrics:
    def __init__(self, processor: str, lag: LagSource | None = None) -> None:
        self.processor = processor
        self.registry = CollectorRegistry()
        self.records_in = Counter(
            "cdp_worker_records_in",
            "Records applied, by source topic (redeliveries count again).",
            ["processor", "topic"],
            registry=self.registry,
        )
        self.outputs = Counter(
            "cdp_worker_outputs_published",
            "Records published after a batch committed, by destination topic "
            "(dead letters included, on the dead-letter topic).",
            ["processor", "topic"],
            registry=self.registry,
        )
        self.dead_lettered = Counter(
            "cdp_worker_dead_lettered",
            "Input records dead-lettered, by reason and source topic.",
            ["processor", "reason", "topic"],
            registry=self.registry,
        )
        self.batch_counts = Counter(
            "cdp_worker_batch_counts",
            "The counts a processor reports per batch (BatchResult.stats), by name: "
            "merges, conflicts, duplicates, fenced, decided_* ...",
            ["processor", "name"],
            registry=self.registry,
        )
        self.store_retries = Counter(
            "cdp_worker_store_retries",
            "Batch transactions retried after a transient database error.",
            ["processor"],
            registry=self.registry,
        )
        self.store_blocked = Counter(
            "cdp_worker_store_blocked",
            "Batch transactions retried after a database error their data did not cause"
            " (a missing table or grant, a server or client fault): needs an operator.",
            ["processor"],
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "cdp_worker_batch_size",
            "Records per batch.",
            ["processor"],
            buckets=BATCH_SIZE_BUCKETS,
            registry=self.registry,
        )
        self.apply_seconds = Histogram(
            "cdp_worker_apply_seconds",
            "Time to apply a batch in PostgreSQL (transaction, retries and bisection).",
            ["processor"],
            buckets=SECONDS_BUCKETS,
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "cdp_worker_batch_seconds",
            "Time to run a batch end to end: apply, publish the outputs, mark them published.",
            ["processor"],
            buckets=SECONDS_BUCKETS,
            registry=self.registry,
        )
        self.lag: LagCollector | None = None
        if lag is not None:
            self.lag = LagCollector(processor, lag)
            self.registry.register(self.lag)

    def retried(self) -> None:
        self.store_retries.labels(self.processor).inc()

    def blocked(self) -> None:
        self.store_blocked.labels(self.processor).inc()

    def observe_batch(
        self,
        records: Sequence[Record],
        result: BatchResult,
        outputs: Sequence[Output],
        apply_s: float,
        total_s: float,
    ) -> None:
        """Record one applied batch. Never raises: a metrics bug must not stop a worker."""
        try:
            p = self.processor
            for topic, n in collections.Counter(r.topic for r in records).items():
                self.records_in.labels(p, topic).inc(n)
            for topic, n in collections.Counter(o.topic for o in outputs).items():
                self.outputs.labels(p, topic).inc(n)
            for (reason, topic), n in collections.Counter(
                (dl.reason, dl.record.topic) for dl in result.dead_letters
            ).items():
                self.dead_lettered.labels(p, reason, topic).inc(n)
            for name, n in result.stats.items():
                self.batch_counts.labels(p, name).inc(max(0, n))
            self.batch_size.labels(p).observe(len(records))
            self.apply_seconds.labels(p).observe(apply_s)
            self.batch_seconds.labels(p).observe(total_s)
        except Exception:
            log.exception("processor=%s metrics not recorded", self.processor)

    def serve(self, port: int, addr: str = "0.0.0.0") -> int:
        """Serve the registry on ``http://addr:port/metrics`` from a daemon thread;
        returns the bound port (``port=0`` picks a free one). Raises ``OSError`` when
        the port is taken."""
        server, _thread = start_http_server(port, addr, registry=self.registry)
        return int(server.server_port)
