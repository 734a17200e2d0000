"""Prometheus metrics of one collector app, on its own registry (several apps, e.g. in
tests, never clash). With ``--workers > 1`` each process exposes its own numbers."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "cdp_collector_requests",
            "HTTP requests by endpoint and status code.",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.accepted = Counter(
            "cdp_collector_events_accepted",
            "Events acknowledged by Kafka, by channel.",
            ["channel"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "cdp_collector_events_rejected",
            "Events not stored, by reason code (validation codes, too_large, "
            "batch_rejected for valid items of a refused batch, not_acknowledged).",
            ["reason"],
            registry=self.registry,
        )
        self.produce_seconds = Histogram(
            "cdp_collector_produce_seconds",
            "Time from produce to the last Kafka acknowledgement of a request.",
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
