"""One Faust app per processor (its own consumer group), started by ``cdp worker``.

Faust pitfalls this adapter avoids:
- an exception inside an agent acks the message → the batch runner never raises
  (transient errors are retried in place, permanent ones dead-lettered);
- ``exactly_once`` has open duplicate bugs → at-least-once (the default) plus
  idempotent, offset-fenced writes in PostgreSQL;
- agent concurrency > 1 lets commits skip an in-flight message → concurrency 1; scale
  with partitions and worker processes instead;
- ``take_events`` acks a batch only after the body returns, so an offset is committed
  only once its batch is durable in PostgreSQL and its outputs are on Kafka.

Faust's default Monitor sensor does bookkeeping on every message and stream event;
the workers' metrics are recorded per batch by the batch runner instead, so
:class:`BatchMetricsOnly` switches the per-message part off.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import faust
from faust.sensors import Monitor

from cdp.config import Settings
from cdp.pipeline.metrics import WorkerMetrics
from cdp.pipeline.records import Record, is_restored
from cdp.pipeline.runner import BatchRunner, Processor
from streams.security import broker_credentials

log = logging.getLogger(__name__)

BATCH_MAX = 2000
# take_events waits this long for a batch to fill, on every hop: it is the floor of
# the latency at low load. Under a backlog batches fill to BATCH_MAX at once anyway.
BATCH_WITHIN_S = 0.05


class BatchMetricsOnly(Monitor):
    """Faust's Monitor without its per-message and per-event bookkeeping (the batch
    runner records what the workers expose; Faust's web stats are off). Only the
    stream inbound time stays: the consumer's slow-processing check reads it."""

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        # the one figure Faust itself reads (its slow-processing diagnostics)
        self.stream_inbound_time[tp] = time.monotonic()

    def on_stream_event_out(
        self, tp: Any, offset: int, stream: Any, event: Any, state: Any = None
    ) -> None:
        return None

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        return None


def _record(event: Any) -> Record:
    msg = event.message
    return Record(
        topic=msg.topic,
        partition=msg.partition,
        offset=msg.offset,
        key=msg.key,
        # a record without a value (a tombstone any client can write) is bad input to
        # dead-letter, not a None that would crash the processor on every redelivery
        value=msg.value if msg.value is not None else b"",
        timestamp_ms=int(msg.timestamp * 1000) if msg.timestamp else None,
        restored=is_restored(msg.headers),
    )


def create_app(
    settings: Settings,
    name: str,
    source_topics: Sequence[str],
    make_processor: Callable[[Settings], Processor],
    *,
    batch_max: int = BATCH_MAX,
    batch_within_s: float = BATCH_WITHIN_S,
    web_port: int | None = None,
    metrics: WorkerMetrics | None = None,
) -> faust.App:
    """A Faust app consuming ``source_topics`` in batches through ``make_processor``.

    ``web_port`` enables Faust's own web server (off by default); ``metrics`` is where
    the batch runner records its Prometheus metrics (``cdp worker`` serves them on
    ``CDP_METRICS_PORT``, a separate port)."""
    app_name = f"{settings.topic_prefix}cdp-{name}"
    # Faust's default data directory is ./<name>-data, wherever the worker was started
    # (in a container, a directory the worker may not write); it creates only the last
    # level itself.
    datadir = settings.state_dir / "faust" / app_name
    datadir.parent.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        app_name,
        broker=f"kafka://{settings.bootstrap()}",
        datadir=datadir,
        broker_credentials=broker_credentials(settings),
        store="memory://",
        topic_allow_declare=False,
        topic_disable_leader=True,
        web_enabled=web_port is not None,
        web_port=web_port or 6066,
        broker_commit_every=batch_max,
        broker_commit_interval=1.0,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.kafka_session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.kafka_session_timeout_s / 3),
        stream_buffer_maxsize=batch_max * 2,
        producer_acks=-1,
        logging_config=None,
        Monitor=BatchMetricsOnly,
    )
    topic = app.topic(*source_topics, key_serializer="raw", value_serializer="raw")
    holder: dict[str, BatchRunner] = {}
    stopping = {"flag": False}

    def runner() -> BatchRunner:
        if "runner" not in holder:
            holder["runner"] = BatchRunner(
                settings,
                make_processor(settings),
                should_stop=lambda: stopping["flag"],
                metrics=metrics,
            )
        return holder["runner"]

    async def process(stream: Any) -> None:
        async for events in stream.take_events(batch_max, within=batch_within_s):
            records = [_record(ev) for ev in events]
            try:
                # blocking database + producer work runs off the event loop so the
                # consumer keeps heart-beating during long retries
                result = await asyncio.to_thread(runner().run, records)
                stats = " ".join(f"{k}={v}" for k, v in sorted(result.stats.items()))
                log.info("processor=%s batch=%d %s", name, len(records), stats)
            except BaseException:
                # Reached only on shutdown or a bug: letting the exception out would
                # make take_events ack the batch (and Faust commit it). Exit at once
                # instead, acking nothing; redelivery is absorbed by the fences.
                log.exception("processor=%s batch not applied; exiting without ack", name)
                logging.shutdown()
                os._exit(70)

    app.agent(topic, name=f"cdp-{name}", concurrency=1)(process)

    async def _stop(app_: Any, **_: Any) -> None:
        stopping["flag"] = True

    app.on_before_shutdown.connect(_stop)  # type: ignore[arg-type]

    return app
