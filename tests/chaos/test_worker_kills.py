"""Chaos: SIGKILL workers at random moments, reset consumers and reprocess everything;
the database and the lake must equal the pure batch reference: 0 lost, 0 applied
twice, identical clusters and stages.

Sizes: ``CDP_CHAOS_CUSTOMERS`` (default 400 ≈ 13k events, for `make test`);
`make test-chaos` runs 6000 customers ≈ 200k events. ``CDP_CHAOS_KILLS``: 10, and 60
in `make test-chaos`.
"""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from cdp.config import Settings
from cdp.lake.layout import part_files
from tests.chaos.harness import (
    Killer,
    Traffic,
    check_state,
    fingerprint,
    make_traffic,
    produce,
    wait_and_time,
)
from tests.integration.workers import Workers

CUSTOMERS = int(os.environ.get("CDP_CHAOS_CUSTOMERS", "400"))
KILLS = int(os.environ.get("CDP_CHAOS_KILLS", "10"))
ALL = ["identity", "journey", "archive"]


@pytest.fixture(scope="module")
def traffic(services: Settings) -> Traffic:
    return make_traffic(services, CUSTOMERS, 60, seed=21)


def reset_consumer_groups(settings: Settings, groups: list[str]) -> None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(settings.librdkafka())
    for fut in admin.delete_consumer_groups(groups, request_timeout=30).values():
        fut.result()


def report(title: str, figures: dict[str, Any]) -> None:
    print(f"\n[chaos] {title}: " + " ".join(f"{k}={v}" for k, v in figures.items()))


@pytest.mark.timeout(1800)
def test_sigkills_then_full_redelivery_change_nothing(
    settings: Settings, topics: dict[str, str], workers: Workers, db: Any, traffic: Traffic
) -> None:
    produce(settings, traffic.events)
    for name in ["identity", "identity", "journey", "archive"]:
        workers.start(name)
    # a kill every ~2 s (jittered), mostly of workers past their start-up, until
    # KILLS have landed; kills_in_batch reports how many hit a batch in flight
    killer = Killer(workers, every_s=2.0)
    killer.start()
    try:
        while len(killer.kills) < KILLS:
            assert all(p.poll() is None or p.returncode == -9 for _, p in workers.procs)
            time.sleep(0.5)
    finally:
        killer.stop()
    seconds = wait_and_time(workers, ALL, timeout=600)
    figures = check_state(settings, db, traffic)
    figures |= {
        "kills": len(killer.kills),
        "kills_in_batch": killer.in_flight,
        "kills_in_startup": killer.in_startup,
        "drain_s": round(seconds, 1),
    }
    report("worker kills", figures)
    assert len(killer.kills) >= KILLS
    assert figures["lost"] == 0 and figures["lost_journey"] == 0
    assert figures["applied_twice_lake"] == 0
    assert figures["lake_rows"] == traffic.distinct
    assert figures["identity_diffs"] == 0
    assert figures["stage_diffs"] == 0
    before = fingerprint(db)

    # Redelivery: stop everything, forget every position (PostgreSQL fences and Kafka
    # consumer groups) and reprocess all topics from the beginning.
    workers.stop_all()
    db.execute("DELETE FROM applied_offsets")
    reset_consumer_groups(settings, [f"{settings.topic_prefix}cdp-{n}" for n in ALL])
    for name in ALL:
        workers.start(name)
    workers.wait_drained(ALL, timeout=600)
    after = fingerprint(db)
    figures = check_state(settings, db, traffic)
    report("full redelivery", figures)
    assert after == before, {t: (before[t], after[t]) for t in before if before[t] != after[t]}
    assert figures["applied_twice_lake"] == 0 and figures["lake_rows"] == traffic.distinct
    assert part_files(settings.lake_path)
