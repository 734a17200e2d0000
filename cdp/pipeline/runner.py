"""Run one batch through a processor with the guarantees the processors rely on.

- the processor's ``apply`` runs inside one PostgreSQL transaction (state + fence);
- transient database errors (connection lost, server restarting, deadlock) are
  retried with backoff, forever, while the partition waits: nothing is acked that was
  not written;
- so are errors the data did not cause (a missing table or grant, a server or client
  fault), logged as errors and counted apart: they would fail every record alike;
- a batch that does not continue exactly where its partition's outputs were last
  published (the consumer skipped records: a client bug, a reset or seek past them,
  or a commit past a batch still in flight) is completed from Kafka before it is
  applied, so a fence never moves past a record that was not applied, and no record
  stays applied without its outputs on Kafka;
- a data error (SQLSTATE class 21, 22, 23 or 54, or a value psycopg refuses to
  send) is narrowed down by bisecting the batch; the one record that still fails
  alone becomes a dead letter with the database's message, published before its
  offset is fenced so the partition moves on;
- outputs are published (and flushed) after the commit;
- every batch is recorded in :class:`cdp.pipeline.metrics.WorkerMetrics` (records in
  and out per topic, dead letters, the processor's counts, batch size and latencies);
- nothing ever raises out of :meth:`BatchRunner.run` except on shutdown.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg
from confluent_kafka import KafkaException

from cdp.config import Settings
from cdp.errors import KafkaError, TransientStoreError, ValidationError
from cdp.kafka.reader import range_consumer, read_range
from cdp.pipeline import fence
from cdp.pipeline.deadletter import DeadLetter
from cdp.pipeline.metrics import WorkerMetrics
from cdp.pipeline.publish import Output, Publisher
from cdp.pipeline.records import Record
from cdp.store.connect import connect, is_data_error, is_transient

log = logging.getLogger(__name__)

# Retry delays (s): a transient error clears in seconds; any other error that is
# not the data's needs an operator, so it is retried less often.
_TRANSIENT_MAX_DELAY = 5.0
_BLOCKED_MAX_DELAY = 30.0


class _Holes(Exception):
    """The batch has holes between its published positions and its greatest offsets
    (see :func:`cdp.pipeline.fence.holes`); raised before anything is applied."""

    def __init__(self, holes: dict[tuple[str, int], tuple[int | None, int]]) -> None:
        super().__init__(f"holes in {sorted(holes)}")
        self.holes = holes


@dataclass
class BatchResult:
    outputs: list[Output] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)
    # outputs already on Kafka: a store error's dead letter, published before its fence
    sent: list[Output] = field(default_factory=list)

    def count(self, name: str, n: int = 1) -> None:
        self.stats[name] = self.stats.get(name, 0) + n

    def refuse(self, rec: Record, exc: ValidationError, processor: str) -> None:
        """Set aside a record ``processor`` cannot take: a dead letter with the reason,
        counted as ``invalid_<reason>``."""
        self.dead_letters.append(DeadLetter(rec, exc.reason, exc.detail, processor))
        self.count(f"invalid_{exc.reason}")

    def extend(self, other: BatchResult) -> None:
        self.outputs += other.outputs
        self.dead_letters += other.dead_letters
        self.sent += other.sent
        for k, v in other.stats.items():
            self.count(k, v)


class Processor(Protocol):
    name: str

    def apply(self, conn: psycopg.Connection[Any], records: Sequence[Record]) -> BatchResult:
        """Apply a batch inside the caller's transaction (fence included)."""
        ...


class BatchRunner:
    def __init__(
        self,
        settings: Settings,
        processor: Processor,
        publisher: Publisher | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.processor = processor
        self.publisher = publisher or Publisher(settings, f"cdp-{processor.name}")
        self.should_stop = should_stop
        self.deadletter_topic = settings.topic("deadletter")
        self._conn: psycopg.Connection[Any] | None = None
        self._range_consumer: Any = None
        # per partition: up to which offset Kafka was read and had no other records
        self._checked: dict[tuple[str, int], int] = {}
        self.refetched = 0  # records the consumer skipped, read back from Kafka
        self.totals: dict[str, int] = {}
        self.metrics = metrics if metrics is not None else WorkerMetrics(processor.name)

    # -- connection -------------------------------------------------------------
    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = connect(self.settings, role=self.settings.db_role_worker)
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
        self._conn = None

    def close(self) -> None:
        self._drop_connection()
        if self._range_consumer is not None:
            with contextlib.suppress(Exception):
                self._range_consumer.close()
            self._range_consumer = None
        closer = getattr(self.processor, "close", None)  # processors with resources
        if callable(closer):
            closer()
        with contextlib.suppress(Exception):
            self.publisher.close()

    # -- batches ----------------------------------------------------------------
    def run(self, records: Sequence[Record]) -> BatchResult:
        started = time.perf_counter()
        refetched = self.refetched
        result = self._apply_with_retry(records)
        if self.refetched > refetched:
            result.count("refetched", self.refetched - refetched)
        applied = time.perf_counter()
        sent = {(o.topic, o.key) for o in result.sent}
        outputs = list(result.outputs)
        outputs += [
            Output(self.deadletter_topic, dl.key(), dl.to_value())
            for dl in result.dead_letters
            if (self.deadletter_topic, dl.key()) not in sent
        ]
        if outputs:
            self.publisher.publish(outputs, self.should_stop)
        self._mark_published(records)
        for k, v in result.stats.items():
            self.totals[k] = self.totals.get(k, 0) + v
        self.metrics.observe_batch(
            records, result, [*result.sent, *outputs], applied - started,
            time.perf_counter() - started,
        )  # fmt: skip
        return result

    def _mark_published(self, records: Sequence[Record]) -> None:
        # Best effort: losing this mark only means the outputs are re-published
        # (downstream de-duplicates by messageId), never that anything is lost.
        try:
            conn = self._connection()
            with conn.transaction():
                fence.mark_published(conn, self.processor.name, records)
        except (psycopg.Error, TransientStoreError) as exc:
            self._drop_connection()
            log.warning(
                "processor=%s could not mark outputs published: %s", self.processor.name, exc
            )

    def _apply_once(self, records: Sequence[Record], part_of_batch: bool) -> BatchResult:
        conn = self._connection()
        with conn.transaction():
            # A whole batch must continue where its outputs were last published; a
            # part of one being bisected, where the part before it was applied (its
            # outputs are published with the whole batch's).
            load = fence.load_fences if part_of_batch else fence.load_published
            positions = load(conn, self.processor.name, records)
            holes = fence.holes(positions, records, self._checked)
            if self.settings.log_offsets:
                log.info(
                    "processor=%s offsets %s%s", self.processor.name,
                    fence.describe(positions, records), f" holes={holes}" if holes else "",
                )  # fmt: skip
            if holes:
                raise _Holes(holes)  # nothing applied yet: the transaction rolls back
            live = [r for r in records if not r.restored]
            if len(live) == len(records):
                return self.processor.apply(conn, records)
            # restored copies were applied as their originals: only the fence moves
            result = self.processor.apply(conn, live) if live else BatchResult()
            fence.advance(conn, self.processor.name, records)
            result.count("restored_skipped", len(records) - len(live))
            return result

    def _fill_holes(
        self, records: Sequence[Record], holes: dict[tuple[str, int], tuple[int | None, int]]
    ) -> list[Record]:
        """``records`` with every record Kafka has in the holes' ranges (the ones the
        consumer delivered are kept as they are); retried until Kafka answers."""
        delay = 0.5
        while True:
            try:
                if self._range_consumer is None:
                    self._range_consumer = range_consumer(self.settings, self.processor.name)
                fetched = {
                    key: read_range(self._range_consumer, key[0], key[1], first, last)
                    for key, (first, last) in sorted(holes.items())
                }
                break
            except (KafkaError, KafkaException) as exc:
                if self.should_stop():
                    raise
                log.warning(
                    "processor=%s cannot read skipped records yet, retrying in %.1fs: %s",
                    self.processor.name, delay, exc,
                )  # fmt: skip
                if self._range_consumer is not None:
                    with contextlib.suppress(Exception):
                        self._range_consumer.close()
                    self._range_consumer = None
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
        have = {(r.topic, r.partition, r.offset) for r in records}
        added = [
            rec
            for recs in fetched.values()
            for rec in recs
            if (rec.topic, rec.partition, rec.offset) not in have
        ]
        for key, (_, last) in holes.items():
            self._checked[key] = max(self._checked.get(key, -1), last)
        ranges = ", ".join(f"{t}[{p}] {f}..{last}" for (t, p), (f, last) in sorted(holes.items()))
        if added:
            self.refetched += len(added)
            log.warning(
                "processor=%s read %d record(s) back from Kafka that the batch lacked (skipped"
                " by the consumer, or applied without their publication recorded): %s",
                self.processor.name, len(added), ranges,
            )  # fmt: skip
        else:  # offsets Kafka has no record at (control records, compaction)
            log.info("processor=%s no records in the gaps of %s", self.processor.name, ranges)
        return sorted([*records, *added], key=lambda r: (r.topic, r.partition, r.offset))

    def _apply_with_retry(
        self, records: Sequence[Record], part_of_batch: bool = False
    ) -> BatchResult:
        delay = 0.2
        while True:
            try:
                return self._apply_once(records, part_of_batch)
            except _Holes as exc:
                records = self._fill_holes(records, exc.holes)
            except (psycopg.Error, TransientStoreError) as exc:
                if is_transient(exc):
                    self.metrics.retried()
                    log.warning(
                        "processor=%s transient database error, retrying in %.1fs: %s",
                        self.processor.name, delay, exc,
                    )  # fmt: skip
                    delay = self._pause(exc, delay, _TRANSIENT_MAX_DELAY)
                elif is_data_error(exc):
                    return self._bisect(records, exc)
                else:
                    # Not the data's fault (a missing table or grant, a server or client
                    # fault): every record would fail alike, and dead-lettering them
                    # would empty the partition into the dead-letter topic. Wait instead.
                    self.metrics.blocked()
                    log.error(
                        "processor=%s cannot apply a batch (%s, not caused by its data);"
                        " the partition waits, retrying in %.1fs: %s",
                        self.processor.name, type(exc).__name__, delay, exc,
                    )  # fmt: skip
                    delay = self._pause(exc, delay, _BLOCKED_MAX_DELAY)

    def _pause(self, exc: BaseException, delay: float, max_delay: float) -> float:
        """Wait ``delay`` s on a fresh connection before a retry; returns the next delay.
        On shutdown ``exc`` is raised instead, so the batch is not acknowledged."""
        self._drop_connection()
        if self.should_stop():
            raise exc
        time.sleep(delay)
        return min(delay * 2, max_delay)

    def _bisect(self, records: Sequence[Record], exc: psycopg.Error) -> BatchResult:
        """Find the record(s) that fail permanently; dead-letter them, apply the rest."""
        if len(records) == 1:
            return self._dead_letter(records[0], exc)
        mid = len(records) // 2
        result = self._apply_with_retry(records[:mid], part_of_batch=True)
        result.extend(self._apply_with_retry(records[mid:], part_of_batch=True))
        return result

    def _dead_letter(self, rec: Record, exc: psycopg.Error) -> BatchResult:
        """Publish ``rec`` as a dead letter, then fence it (retried like a batch).

        In this order, a crash in between leaves the record unfenced, so it fails again
        on redelivery and is dead-lettered twice (same key); fenced first, it would be
        taken for applied and its dead letter never sent."""
        log.error("processor=%s dead-lettering offset=%s: %s", self.processor.name, rec.offset, exc)
        dead = DeadLetter(rec, "store_error", str(exc).strip(), self.processor.name)
        sent = Output(self.deadletter_topic, dead.key(), dead.to_value())
        self.publisher.publish([sent], self.should_stop)
        delay = 0.2
        while True:
            try:
                conn = self._connection()
                with conn.transaction():
                    fence.advance(conn, self.processor.name, [rec])
                break
            except (psycopg.Error, TransientStoreError) as err:
                log.warning(
                    "processor=%s cannot fence dead letter offset=%s, retrying in %.1fs: %s",
                    self.processor.name, rec.offset, delay, err,
                )  # fmt: skip
                delay = self._pause(err, delay, _TRANSIENT_MAX_DELAY)
        result = BatchResult(dead_letters=[dead], sent=[sent])
        result.count("dead_lettered")
        return result
