"""The processors ``cdp worker`` knows: their source topics and how to build them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import faust

from cdp.config import Settings
from cdp.events.envelope import CHANNELS
from cdp.pipeline.metrics import WorkerMetrics
from cdp.pipeline.runner import Processor
from streams.app import BATCH_MAX, BATCH_WITHIN_S, create_app


@dataclass(frozen=True)
class ProcessorSpec:
    name: str
    sources: Callable[[Settings], list[str]]
    factory: Callable[[Settings], Processor]
    help: str
    # records per batch and how long a batch waits to fill (streams.app defaults)
    batch_max: int = BATCH_MAX
    batch_within_s: float = BATCH_WITHIN_S


def _identity(settings: Settings) -> Processor:
    from cdp.identity.processor import IdentityProcessor

    processor: Processor = IdentityProcessor(settings)
    return processor


def _journey(settings: Settings) -> Processor:
    from cdp.journey.processor import JourneyProcessor

    processor: Processor = JourneyProcessor(settings)
    return processor


def _archive(settings: Settings) -> Processor:
    from cdp.lake.processor import ArchiveProcessor

    processor: Processor = ArchiveProcessor(settings)
    return processor


def _actions(settings: Settings) -> Processor:
    from cdp.activation.processor import ActionProcessor

    processor: Processor = ActionProcessor(settings)
    return processor


PROCESSORS: dict[str, ProcessorSpec] = {
    "identity": ProcessorSpec(
        "identity",
        lambda s: [s.topic(f"touchpoints.{ch}") for ch in CHANNELS],
        _identity,
        "validate, de-duplicate and resolve channel events into customers",
    ),
    "journey": ProcessorSpec(
        "journey",
        lambda s: [s.topic("touchpoints.resolved")],
        _journey,
        "keep each customer's journey stage and transitions",
    ),
    "archive": ProcessorSpec(
        "archive",
        lambda s: [s.topic("touchpoints.resolved")],
        _archive,
        "write resolved events to the Parquet lake",
        # bigger batches, fewer and larger files: a batch writes one file per (event
        # date, channel) and partition, and nobody waits on the lake by the second
        batch_max=10_000,
        batch_within_s=1.0,
    ),
    "actions": ProcessorSpec(
        "actions",
        lambda s: [
            s.topic("touchpoints.resolved"),
            s.topic("journey.transitions"),
            s.topic("journey.progress"),
        ],
        _actions,
        "fire activation actions (abandoned cart, sales rep, winback) on cdp.actions",
    ),
}


def metrics_port(settings: Settings, name: str) -> int:
    """The metrics port of ``name`` when several processors run on one machine (the
    ``cdp worker`` supervisor, the local stack): ``CDP_METRICS_PORT`` + its index in
    :data:`PROCESSORS`, or 0 (off) when ``CDP_METRICS_PORT`` is 0."""
    if not settings.metrics_port:
        return 0
    return settings.metrics_port + list(PROCESSORS).index(name)


def build_app(
    settings: Settings,
    name: str,
    web_port: int | None = None,
    metrics: WorkerMetrics | None = None,
) -> faust.App:
    spec = PROCESSORS[name]
    return create_app(
        settings,
        name,
        spec.sources(settings),
        spec.factory,
        batch_max=spec.batch_max,
        batch_within_s=spec.batch_within_s,
        web_port=web_port,
        metrics=metrics,
    )
