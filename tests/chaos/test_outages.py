"""Chaos: PostgreSQL and Kafka go away mid-stream (clean stop and kill -9); the
workers must neither crash-loop nor acknowledge what they could not write, and once
the services are back the state must equal the pure reference.

Outage length: ``CDP_CHAOS_OUTAGE_S`` (default 15 s in `make test`; `make test-chaos`
uses 60 s).
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from cdp.config import Settings
from cdp.stack import Stack
from cdp.store.connect import connect
from tests.chaos.harness import Traffic, check_state, make_traffic, produce
from tests.chaos.test_worker_kills import ALL, report
from tests.integration.workers import Workers

OUTAGE_S = float(os.environ.get("CDP_CHAOS_OUTAGE_S", "15"))
CUSTOMERS = int(os.environ.get("CDP_CHAOS_CUSTOMERS", "400"))


@pytest.fixture(scope="module")
def traffic(services: Settings) -> Traffic:
    return make_traffic(services, CUSTOMERS, 60, seed=33)


@pytest.fixture
def local_stack(services: Settings) -> Stack:
    stack = Stack(services)
    if stack.external:
        pytest.fail("the outage tests stop and start services: run them on the local stack")
    return stack


@pytest.mark.timeout(1800)
def test_postgres_and_kafka_outages(
    settings: Settings,
    topics: dict[str, str],
    workers: Workers,
    traffic: Traffic,
    local_stack: Stack,
) -> None:
    half = len(traffic.events) // 2
    produce(settings, traffic.events[:half])
    for name in ALL:
        workers.start(name)
    time.sleep(3)

    pg = local_stack.postgres
    pg.stop("fast")  # clean stop mid-stream
    time.sleep(OUTAGE_S)
    pg.start()
    time.sleep(3)
    pid = pg.pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)  # crash: the postmaster dies, recovery on start
    time.sleep(2)
    pg.start()
    pg.wait_ready()

    kafka = local_stack.kafka
    kafka.stop()  # clean broker restart while the other half is not yet produced
    time.sleep(OUTAGE_S / 3)
    kafka.start()
    kafka.wait_ready()
    produce(settings, traffic.events[half:])
    kpid = kafka.pid()
    assert kpid is not None
    os.kill(kpid, signal.SIGKILL)
    time.sleep(2)
    kafka.start()
    kafka.wait_ready()

    workers.wait_drained(ALL, timeout=900)
    crashed = [(n, p.returncode) for n, p in workers.procs if p.poll() is not None]
    assert crashed == [], f"workers exited: {crashed}\n{workers.logs()}"
    db = connect(settings, autocommit=True)
    try:
        figures = check_state(settings, db, traffic)
    finally:
        db.close()
    report("postgres + kafka outages", figures | {"outage_s": OUTAGE_S})
    assert figures["lost"] == 0 and figures["lost_journey"] == 0
    assert figures["applied_twice_lake"] == 0 and figures["lake_rows"] == traffic.distinct
    assert figures["identity_diffs"] == 0 and figures["stage_diffs"] == 0
