"""Shared machinery of the chaos suite: generated traffic with a pure reference, a
killer that SIGKILLs workers at random moments, and state fingerprints."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import duckdb
import orjson
import psycopg

from cdp.config import Settings
from cdp.events import parse_object
from cdp.generate import generate
from cdp.identity.graph import observation_from_event
from cdp.identity.hashing import IdentifierHasher
from cdp.identity.rules import MergeRules
from cdp.kafka.producer import Producer
from cdp.kafka.reader import range_consumer, read_range, read_topic
from cdp.kafka.watermarks import watermarks
from cdp.lake.layout import lake_glob, part_files
from cdp.pipeline.deadletter import decode
from cdp.pipeline.lag import end_offsets
from streams.registry import PROCESSORS
from tests.integration.test_generated_traffic import reference
from tests.integration.workers import Workers

# Columns that record *when* something was written, not *what*: excluded from hashes.
WALL_CLOCK = {"updated_at", "recorded_at", "created_at", "seen_at", "applied_at"}
TABLES = ("identities", "customers", "customer_redirects", "merges", "conflicts",
          "identity_links", "journey", "transitions", "seen_messages")  # fmt: skip


@dataclass
class Traffic:
    events: list[dict[str, Any]]
    distinct: int
    nodes: dict[str, str]
    stages: dict[str, Any]
    anonymous: int  # events with no usable identifier: archived, no journey


def make_traffic(settings: Settings, customers: int, days: int, seed: int) -> Traffic:
    events = list(generate(customers, days, seed).events())
    nodes, stages = reference(settings, events)
    rules = MergeRules.load()
    hasher = IdentifierHasher(settings.identity_secret.get_secret_value().encode())
    distinct = {e["messageId"]: e for e in events}
    anonymous = sum(
        1
        for e in distinct.values()
        if not (
            (
                o := observation_from_event(
                    parse_object(e), rules, hasher, settings.default_phone_region
                )
            ).nodes
            or o.alias_previous
        )
    )
    return Traffic(events, len(distinct), nodes, stages, anonymous)


# Where the broker acknowledged each event: messageId → (topic, partition, offset)s.
# A lost event's report compares it with what Kafka holds there now.
ACKED: dict[str, list[tuple[str, int, int]]] = {}


class _RecordingProducer(Producer):
    def _on_delivery(self, err: Any, msg: Any) -> None:
        if err is None:
            mid = orjson.loads(msg.value()).get("messageId")
            ACKED.setdefault(mid, []).append((msg.topic(), msg.partition(), msg.offset()))
        super()._on_delivery(err, msg)


def produce(settings: Settings, events: list[dict[str, Any]]) -> None:
    # CDP_CHAOS_PRODUCER_DEBUG: librdkafka debug contexts for the traffic producer
    # (e.g. "eos,topic,metadata": idempotence state, partition and metadata changes)
    debug = os.environ.get("CDP_CHAOS_PRODUCER_DEBUG")
    config = {"debug": debug} if debug else None
    with _RecordingProducer(settings, source="chaos", config=config) as producer:
        producer.send_many(events)


def acked_on(settings: Settings) -> int:
    """Records the broker acknowledged to :func:`produce` on identity's source topics
    (more than ``on_kafka``: the broker lost records it had acknowledged)."""
    sources = set(PROCESSORS["identity"].sources(settings))
    return sum(1 for acks in ACKED.values() for topic, _, _ in acks if topic in sources)


def records_on_kafka(settings: Settings) -> int:
    """Records identity's source topics hold (nothing is deleted during a chaos run)."""
    return sum(end_offsets(settings, PROCESSORS["identity"].sources(settings)).values())


@dataclass
class Killer:
    """SIGKILLs a random worker every ``every_s`` (jittered) and restarts it.

    Most kills pick among workers past their start-up (they have logged a finished
    batch), so they land among batches in flight; picking among all workers kills
    restarted ones again before they join their group, and the kills pile up in
    start-up storms while nothing is processed. A share of ``storm_share`` still picks
    among all live workers, start-up included, to keep rebalances interrupted by
    kills in the mix. ``in_flight`` counts the kills that landed inside a batch
    (between its start and its end), ``in_startup`` those of a worker that had not
    finished a batch yet."""

    workers: Workers
    every_s: float = 3.0
    seed: int = 1
    storm_share: float = 0.25
    kills: list[str] = field(default_factory=list)
    in_flight: int = 0
    in_startup: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        rng = random.Random(self.seed)
        while not self._stop.wait(self.every_s * rng.uniform(0.5, 1.5)):
            storm = rng.random() < self.storm_share
            victim = None
            while victim is None and not self._stop.wait(0.2):
                candidates = [
                    (n, p)
                    for n, p in self.workers.procs
                    if p.poll() is None and (storm or self.workers.has_applied_a_batch(p))
                ]
                victim = rng.choice(candidates) if candidates else None
            if victim is None:
                return
            name, proc = victim
            started = self.workers.has_applied_a_batch(proc)
            self.workers.kill(proc, signal.SIGKILL)
            self.kills.append(name)
            self.in_flight += self.workers.batch_in_flight(proc)
            self.in_startup += not started
            self.workers.start(name)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def fingerprint(conn: psycopg.Connection[Any]) -> dict[str, str]:
    """A hash of every table's content (wall-clock columns and serial ids excluded)."""
    out = {}
    for table in TABLES:
        cols = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = current_schema() AND table_name = %s ORDER BY 1",
                (table,),
            )
            if r[0] not in WALL_CLOCK and r[0] not in ("merge_id", "conflict_id", "transition_id")
        ]
        rows = conn.execute(
            f"SELECT {', '.join(cols)} FROM {table} ORDER BY {', '.join(cols)}"
        ).fetchall()
        out[table] = hashlib.sha256(repr(rows).encode()).hexdigest()[:16]
    return out


def lake_counts(settings: Settings) -> tuple[int, int]:
    """(rows in the lake, distinct message ids in the lake)."""
    if not part_files(settings.lake_path):
        return 0, 0
    files = lake_glob(settings.lake_path)
    row = duckdb.sql(
        f"SELECT count(*), count(DISTINCT message_id) FROM read_parquet('{files}')"
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def check_state(settings: Settings, db: Any, traffic: Traffic) -> dict[str, int]:
    """Compare PostgreSQL and the lake with the pure reference; returns the figures."""
    live = dict(db.execute("SELECT node_id, customer_id FROM identities").fetchall())
    stages = {
        cid: (stage, since)
        for cid, stage, since in db.execute("SELECT customer_id, stage, stage_since FROM journey")
    }
    expected = {cid: (s.stage, s.since) for cid, s in traffic.stages.items()}
    seen = dict(db.execute("SELECT consumer, count(*) FROM seen_messages GROUP BY 1").fetchall())
    applied = seen.get("identity", 0)
    rows, distinct = lake_counts(settings)
    purchases = db.execute("SELECT coalesce(sum(purchase_count), 0) FROM journey").fetchone()[0]
    figures = {
        "events_sent": len(traffic.events),
        "acked": acked_on(settings),
        "on_kafka": records_on_kafka(settings),
        "distinct_events": traffic.distinct,
        "applied": applied,
        "lost": traffic.distinct - applied,
        "lost_journey": traffic.distinct - traffic.anonymous - seen.get("journey", 0),
        "applied_twice_lake": rows - distinct,
        "lake_rows": distinct,
        "identity_diffs": sum(
            1 for n in set(live) | set(traffic.nodes) if live.get(n) != traffic.nodes.get(n)
        ),
        "stage_diffs": sum(
            1 for c in set(stages) | set(expected) if stages.get(c) != expected.get(c)
        ),
        "purchases": int(purchases),
    }
    if figures["lost"] > 0:
        figures["missing"] = where_missing(settings, db, traffic)
    return figures


def where_missing(settings: Settings, db: Any, traffic: Traffic, most: int = 10) -> str:
    """For events identity never applied: where Kafka holds them, the identity fence of
    that partition, and any dead letter with their messageId (a failure's first clue)."""
    seen = {r[0] for r in db.execute(
        "SELECT message_id FROM seen_messages WHERE consumer = 'identity'")}  # fmt: skip
    missing = sorted({e["messageId"] for e in traffic.events} - seen)[:most]
    rows = db.execute("SELECT topic, partition, last_offset FROM applied_offsets"
                      " WHERE consumer = 'identity'")  # fmt: skip
    fences = {(t, p): o for t, p, o in rows}
    found: dict[str, list[str]] = {m: [] for m in missing}
    for topic in PROCESSORS["identity"].sources(settings):
        for msg in read_topic(settings, topic):
            try:
                mid = orjson.loads(msg.value()).get("messageId")
            except (orjson.JSONDecodeError, AttributeError):
                continue
            if mid in found:
                fence = fences.get((topic, msg.partition()))
                found[mid].append(f"{topic}[{msg.partition()}]@{msg.offset()} fence={fence}")
    for msg in read_topic(settings, settings.topic("deadletter")):
        doc = decode(msg.value())
        for mid in found:
            if mid.encode() in (doc.get("raw") or b""):
                found[mid].append(f"dead-lettered: {doc['reason']}")
    for mid, where in found.items():
        if not where:
            where.append("not on Kafka")
        where += [_acked_at(settings, *at) for at in ACKED.get(mid, [])]
    return "; ".join(f"{m}: {', '.join(w)}" for m, w in found.items())


def _acked_at(settings: Settings, topic: str, partition: int, offset: int) -> str:
    """What Kafka holds now where the broker acknowledged an event."""
    if offset < 0:  # librdkafka acknowledged it because a later batch was (KAFKA-15591)
        return f"acked on {topic}[{partition}] with no offset (implicitly)"
    consumer = range_consumer(settings, "chaos-report")
    try:
        low, high = watermarks(consumer, topic, partition)
        if not low <= offset < high:
            return f"acked at {topic}[{partition}]@{offset}, outside {low}..{high - 1} now"
        [held] = read_range(consumer, topic, partition, offset, offset)
        mid = orjson.loads(held.value).get("messageId")
        return f"acked at {topic}[{partition}]@{offset}, which holds {mid} now"
    except Exception as exc:  # a report must not hide the failure it reports
        return f"acked at {topic}[{partition}]@{offset} (unreadable: {exc})"
    finally:
        consumer.close()


def wait_and_time(workers: Workers, names: list[str], timeout: float) -> float:
    start = time.monotonic()
    workers.wait_drained(names, timeout=timeout)
    return time.monotonic() - start
