"""The measured parts of ``bench/run.py`` that need Kafka and PostgreSQL: end-to-end
throughput, freshness at a fixed offered load, and the two baselines."""

from __future__ import annotations

import shutil
import signal
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer

from bench.harness import (
    HEADERS,
    BenchEnv,
    Msg,
    WorkerPool,
    Workload,
    bench_env,
    channel_total,
    kafka_producer,
    produce_all,
    wait_drained,
)
from cdp.config import Settings
from cdp.events import KEY_ORDER
from cdp.generate.ratelimit import TokenBucket

Log = Callable[[str], None]


# -- 1. end to end -----------------------------------------------------------------------
@dataclass
class E2EResult:
    workers: int
    records: int
    produce_s: float
    seconds: float  # first applied batch -> drained
    seconds_with_startup: float  # workers started -> drained
    identity_seconds: float  # first applied batch -> the identity processor caught up
    checks: dict[str, Any] = field(default_factory=dict)
    profile: dict[str, Any] = field(default_factory=dict)

    @property
    def events_per_s(self) -> float:
        return self.records / self.seconds

    @property
    def events_per_s_with_startup(self) -> float:
        return self.records / self.seconds_with_startup


def _py_spy() -> str | None:
    import sys

    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


def run_e2e(
    base: Settings,
    work: Workload,
    workers: int,
    log: Log,
    timeout: float = 1800.0,
    profile_dir: Path | None = None,
) -> E2EResult:
    """Pre-produce the workload, start ``workers`` processes per processor, time the drain."""
    with bench_env(base, f"e2e{workers}") as env:
        produce_s = produce_all(env.settings, work.msgs)
        records = channel_total(env)
        log(f"  produced {records:,} records in {produce_s:.1f}s; starting {workers}x3 workers")
        pool = WorkerPool(env)
        spies: list[tuple[str, subprocess.Popen[bytes], Path]] = []
        started = time.time()
        try:
            pool.start_all(workers)
            if profile_dir is not None:
                spies = _start_profilers(pool, profile_dir, log)
            last = [0.0]

            def progress(lags: dict[str, int]) -> None:
                if time.monotonic() - last[0] > 10:
                    last[0] = time.monotonic()
                    log(f"    lag {lags}")

            times = wait_drained(env, pool, timeout, progress)
            profile = _stop_profilers(spies, log)
            checks, first_pg = _e2e_checks(env)
        finally:
            for _, spy, _ in spies:
                if spy.poll() is None:
                    spy.kill()
            pool.stop_all()
        checks["batches"] = pool.batch_stats()
    first = first_pg or times["first_applied"]
    return E2EResult(
        workers=workers,
        records=records,
        produce_s=produce_s,
        seconds=times["drained"] - first,
        seconds_with_startup=times["drained"] - started,
        identity_seconds=times["identity_drained"] - first,
        checks=checks,
        profile=profile,
    )


def _e2e_checks(env: BenchEnv) -> tuple[dict[str, Any], float | None]:
    with env.connect() as conn:

        def one(sql: str) -> Any:
            row = conn.execute(sql).fetchone()
            return row[0] if row else None

        checks = {
            "identity_seen": one("SELECT count(*) FROM seen_messages WHERE consumer='identity'"),
            "journey_seen": one("SELECT count(*) FROM seen_messages WHERE consumer='journey'"),
            "customers": one("SELECT count(DISTINCT customer_id) FROM identities"),
            "journeys": one("SELECT count(*) FROM journey"),
        }
        checks["lake_files"] = sum(1 for _ in env.settings.lake_path.rglob("*.parquet"))
        first = one(
            "SELECT extract(epoch FROM min(seen_at))::float8 FROM seen_messages"
            " WHERE consumer = 'identity'"
        )
    return checks, first


def _start_profilers(
    pool: WorkerPool, out_dir: Path, log: Log
) -> list[tuple[str, subprocess.Popen[bytes], Path]]:
    spy = _py_spy()
    if spy is None:
        log("  (py-spy not installed: no profile; `.venv/bin/pip install py-spy`)")
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    spies = []
    for name in ("identity", "journey"):
        pid = pool.pids(name)[0]
        out = out_dir / f"{name}.collapsed"
        proc = subprocess.Popen(
            [
                spy,
                "record",
                "-p",
                str(pid),
                "-r",
                "50",
                "-f",
                "raw",
                "-o",
                str(out),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        spies.append((name, proc, out))
    return spies


def _stop_profilers(
    spies: list[tuple[str, subprocess.Popen[bytes], Path]], log: Log
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, proc, path in spies:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        if path.exists():
            out[name] = summarise_profile(path)
            log(f"  profile {name}: {path}")
    return out


def summarise_profile(path: Path, top: int = 12) -> dict[str, Any]:
    """From py-spy's collapsed stacks: the share of samples inside ``BatchRunner.run``
    (the processor's batch thread) vs the rest (Faust/aiokafka event loop, start-up),
    and, within the batch thread, the top functions by self and by inclusive time."""
    own: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = in_batch = in_loop = loop_idle = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_frame(f) for f in stack.split(";")]
        at = next((i for i, f in enumerate(frames) if f.startswith("BatchRunner.run ")), None)
        if at is None:
            if any(f.startswith("BaseEventLoop.run_forever") for f in frames):
                in_loop += n
                loop_idle += n if frames[-1].startswith("EpollSelector.select") else 0
            continue
        in_batch += n
        below = frames[at + 1 :] or frames[at:]
        own[below[-1]] = own.get(below[-1], 0) + n
        for f in set(below):
            incl[f] = incl.get(f, 0) + n

    def pct(d: dict[str, int]) -> list[tuple[str, float]]:
        ranked = sorted(d.items(), key=lambda kv: -kv[1])[:top]
        return [(k, round(100 * v / max(in_batch, 1), 1)) for k, v in ranked]

    return {
        "samples": total,
        "batch_thread_pct": round(100 * in_batch / max(total, 1), 1),
        "event_loop_pct": round(100 * in_loop / max(total, 1), 1),
        "event_loop_in_select_pct": round(100 * loop_idle / max(total, 1), 1),
        "batch_self_pct": pct(own),
        "batch_inclusive_pct": pct(incl),
    }


def _frame(raw: str) -> str:
    # "function (path/to/module.py:123)" -> "function (module.py)"
    name, _, where = raw.partition(" (")
    file = where.rstrip(")").rsplit(":", 1)[0]
    parts = file.split("/")
    short = "/".join(parts[-2:]) if "site-packages" not in file else parts[-1]
    return f"{name} ({short})"


# -- 2. freshness ------------------------------------------------------------------------
@dataclass
class FreshnessResult:
    offered_rate: float
    achieved_rate: float
    produced: int
    matched: int
    journey: dict[str, float]
    identity: dict[str, float]
    drain_after_s: float


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    qs = statistics.quantiles(values, n=100, method="inclusive")
    return {
        "p50": round(qs[49], 4),
        "p95": round(qs[94], 4),
        "p99": round(qs[98], 4),
        "max": round(max(values), 4),
    }


def run_freshness(
    base: Settings, work: Workload, rate: float, duration: float, log: Log, warm: int = 500
) -> FreshnessResult:
    """Workers at steady state, then ``rate`` events/s for ``duration`` s; per event the
    produce time vs the time its journey (and identity) transaction stamped it."""
    warm = min(warm, len(work.msgs) // 10)
    warm_msgs, msgs = work.msgs[:warm], work.msgs[warm:]
    need = int(rate * duration)
    if len(msgs) < need:
        log(f"  (workload has {len(msgs):,} events, {need:,} wanted: the run is shorter)")
    msgs = msgs[:need]
    with bench_env(base, "fresh") as env:
        pool = WorkerPool(env)
        try:
            pool.start_all(1)
            produce_all(env.settings, warm_msgs)
            wait_drained(env, pool, 180)
            log(f"  workers warm; offering {rate:,.0f} events/s for {len(msgs) / rate:.0f}s")
            sent_at, elapsed = _produce_at_rate(env.settings, msgs, rate)
            done_producing = time.time()
            wait_drained(env, pool, 600)
            drain_after = time.time() - done_producing
        finally:
            pool.stop_all()
        with env.connect() as conn:
            seen = {
                consumer: dict(
                    conn.execute(
                        "SELECT message_id, extract(epoch FROM seen_at)::float8"
                        " FROM seen_messages WHERE consumer = %s",
                        (consumer,),
                    ).fetchall()
                )
                for consumer in ("identity", "journey")
            }
    lat = {c: [seen[c][mid] - t for mid, t in sent_at.items() if mid in seen[c]] for c in seen}
    return FreshnessResult(
        offered_rate=rate,
        achieved_rate=len(msgs) / elapsed,
        produced=len(sent_at),
        matched=len(lat["journey"]),
        journey=percentiles(lat["journey"]),
        identity=percentiles(lat["identity"]),
        drain_after_s=round(drain_after, 2),
    )


def _produce_at_rate(
    settings: Settings, msgs: list[Msg], rate: float
) -> tuple[dict[str, float], float]:
    producer = kafka_producer(settings)
    topics = {ch: settings.topic(f"touchpoints.{ch}") for ch in {m.channel for m in msgs}}
    # ticks of ~2 ms; a 50 ms burst allowance absorbs sleep overshoot (else the
    # achieved rate falls short of the offered one)
    chunk = max(1, round(rate / 500))
    bucket = TokenBucket(rate, burst=max(2.0 * chunk, rate / 20))
    sent_at: dict[str, float] = {}
    start = time.perf_counter()
    for i in range(0, len(msgs), chunk):
        bucket.take(chunk)
        now = time.time()
        for m in msgs[i : i + chunk]:
            sent_at.setdefault(m.message_id, now)  # duplicates: the first delivery counts
            while True:
                try:
                    producer.produce(topics[m.channel], m.value, m.key, headers=HEADERS)
                    break
                except BufferError:
                    producer.poll(0.01)
        producer.poll(0)
    producer.flush(60)
    return sent_at, time.perf_counter() - start


# -- 3. baselines ------------------------------------------------------------------------
def _consumer(settings: Settings, group: str) -> Consumer:
    return Consumer(
        settings.librdkafka(
            **{
                "group.id": group,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
    )


def raw_consumer(env: BenchEnv, total: int, timeout: float = 300.0) -> float:
    """confluent-kafka consume + orjson.loads over the channel topics: events/s from the
    first record to the last (group join excluded)."""
    consumer = _consumer(env.settings, f"bench-raw-{uuid.uuid4().hex[:8]}")
    consumer.subscribe(env.channel_topics())
    count, first = 0, 0.0
    loads = orjson.loads
    deadline = time.monotonic() + timeout
    try:
        while count < total and time.monotonic() < deadline:
            batch = consumer.consume(num_messages=10_000, timeout=0.5)
            if batch and not first:
                first = time.perf_counter()
            for msg in batch:
                if msg.error() is None:
                    loads(msg.value() or b"")
                    count += 1
        elapsed = time.perf_counter() - first
    finally:
        consumer.close()
    if count < total:
        raise RuntimeError(f"raw consumer read {count} of {total} records in {timeout}s")
    return count / elapsed


NAIVE_DDL = """
CREATE TABLE naive_customers (
    customer_key text PRIMARY KEY, first_seen timestamptz NOT NULL,
    last_seen timestamptz NOT NULL, events integer NOT NULL);
CREATE TABLE naive_events (
    message_id text PRIMARY KEY, customer_key text NOT NULL, channel text,
    event text, event_time timestamptz, payload jsonb NOT NULL);
"""

_FIELDS = {"user_id": "userId", "anonymous_id": "anonymousId"}


def strongest(obj: dict[str, Any]) -> str:
    ids = obj.get("identifiers") or {}
    for id_type in KEY_ORDER:
        value = obj.get(_FIELDS[id_type]) if id_type in _FIELDS else ids.get(id_type)
        if value:
            return f"{id_type}:{value}"
    return f"message:{obj['messageId']}"


def naive(env: BenchEnv, limit: int, budget_s: float) -> tuple[float, int]:
    """Consume; per event one transaction: upsert a customer row keyed by the strongest
    identifier + insert the event; commit. Runs for ``limit`` events or ``budget_s``."""
    with env.connect() as conn:
        conn.execute(NAIVE_DDL)
    conn = env.connect()
    conn.autocommit = False
    consumer = _consumer(env.settings, f"bench-naive-{uuid.uuid4().hex[:8]}")
    consumer.subscribe(env.channel_topics())
    count, first = 0, 0.0
    try:
        while count < limit:
            if first and time.perf_counter() - first > budget_s:
                break
            batch = consumer.consume(num_messages=500, timeout=0.5)
            if batch and not first:
                first = time.perf_counter()
            for msg in batch:
                if msg.error() is not None:
                    continue
                value = msg.value() or b"{}"
                obj = orjson.loads(value)
                key = strongest(obj)
                ts = obj["timestamp"]
                with conn.cursor() as cur:
                    cur.execute(
                        "INSERT INTO naive_customers AS c"
                        " VALUES (%s, %s::timestamptz, %s::timestamptz, 1)"
                        " ON CONFLICT (customer_key) DO UPDATE SET"
                        " last_seen = greatest(c.last_seen, EXCLUDED.last_seen),"
                        " events = c.events + 1",
                        (key, ts, ts),
                    )
                    cur.execute(
                        "INSERT INTO naive_events"
                        " VALUES (%s, %s, %s, %s, %s::timestamptz, %s::jsonb)"
                        " ON CONFLICT (message_id) DO NOTHING",
                        (
                            obj["messageId"], key, obj.get("channel"), obj.get("event"), ts,
                            value.decode(),
                        ),
                    )  # fmt: skip
                conn.commit()
                count += 1
                if count >= limit:
                    break
        elapsed = time.perf_counter() - first
    finally:
        consumer.close()
        conn.close()
    return count / elapsed, count


def run_baselines(
    base: Settings, work: Workload, log: Log, naive_limit: int, naive_budget_s: float, repeats: int
) -> dict[str, Any]:
    with bench_env(base, "base") as env:
        produce_all(env.settings, work.msgs)
        total = channel_total(env)
        raws = []
        for i in range(repeats):
            raws.append(raw_consumer(env, total))
            log(f"  raw consumer run {i + 1}: {raws[-1]:,.0f} events/s")
        naive_rate, naive_n = naive(env, naive_limit, naive_budget_s)
        log(f"  naive: {naive_rate:,.0f} events/s over {naive_n:,} events")
    return {
        "raw_runs": [round(r) for r in raws],
        "raw": statistics.median(raws),
        "naive": naive_rate,
        "naive_events": naive_n,
    }
