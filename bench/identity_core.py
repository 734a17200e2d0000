"""Throughput of the pure identity core (no Kafka, no SQL).

(a) ``IdentityGraph.apply`` on pre-built observations;
(b) the full path: ``Event`` → ``observation_from_event`` → ``apply``, with cold
    normalization/hash caches at the start of each run.

Usage: ``python bench/identity_core.py [--n 200000] [--json PATH]``. Each figure is the
median of 3 runs on a fresh graph. The headline figures are per CPU-second of the one
core the loop runs on (the core is single-threaded and this machine may be shared);
wall-clock rates are printed and written alongside.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

import cdp.identity.rules as rules_module
from cdp.events.envelope import Event
from cdp.identity import (
    IdentifierHasher,
    IdentityGraph,
    MergeRules,
    Node,
    Observation,
    normalize,
    observation_from_event,
)

REGION = "NL"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
CHANNELS = ("web", "web", "web", "app", "app", "store", "newsletter", "loyalty", "service")
FIELD = {"anonymous_id": "anonymousId", "user_id": "userId"}


@dataclass
class Workload:
    events: list[Event]
    observations: list[Observation]


def _person(rng: random.Random, p: int, family_emails: list[str]) -> list[tuple[str, str]]:
    ids: list[tuple[str, str]] = [
        ("anonymous_id", f"anon-{p}-{k}") for k in range(rng.randint(1, 3))
    ]
    ids += [("device_id", f"dev-{p}-{k}") for k in range(rng.randint(0, 2))]
    ids += [("cookie_id", f"ck-{p}-{k}") for k in range(rng.randint(0, 2))]
    if rng.random() < 0.5:
        ids.append(("user_id", f"user-{p}"))
    if rng.random() < 0.7:
        ids.append(("email", f"Person.{p}@Example.NL"))
    if rng.random() < 0.02:  # shared household address: produces limit conflicts
        ids.append(("email", rng.choice(family_emails)))
    if rng.random() < 0.4:
        ids.append(("phone", f"06-{10000000 + p:08d}"))
    if rng.random() < 0.3:
        ids.append(("loyalty_card", f"{4000 + p // 10000:04d} {p % 10000:04d}"))
    return ids


def build(n: int, seed: int = 7) -> Workload:
    rng = random.Random(seed)
    people = max(1, n // 4)
    family_emails = [f"family{i}@example.nl" for i in range(max(1, people // 200))]
    persons = [_person(rng, p, family_emails) for p in range(people)]
    hasher, rules = IdentifierHasher(b"bench-secret"), MergeRules()
    events: list[Event] = []
    for i in range(n):
        ids = persons[rng.randrange(people)]
        picked = rng.sample(ids, min(len(ids), rng.randint(2, 4)))
        data: dict[str, Any] = {
            "messageId": f"m{i}",
            "type": "track",
            "event": "Product Viewed",
            "channel": rng.choice(CHANNELS),
            "timestamp": T0 + timedelta(seconds=i),
            "identifiers": {},
        }
        for id_type, value in picked:
            if id_type in FIELD:
                data[FIELD[id_type]] = value
            else:
                data["identifiers"][id_type] = value
        events.append(Event.model_validate(data))
    observations = [observation_from_event(e, rules, hasher, REGION) for e in events]
    return Workload(events, observations)


@dataclass
class Rate:
    cpu: float  # per CPU-second of this (single-threaded) process
    wall: float  # per wall-clock second: lower when other processes share the cores


def _rate(run: Callable[[], int]) -> Rate:
    cpu, wall = [], []
    for _ in range(3):
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        count = run()
        cpu.append(count / (time.process_time() - start_cpu))
        wall.append(count / (time.perf_counter() - start_wall))
    return Rate(statistics.median(cpu), statistics.median(wall))


def bench_apply(work: Workload) -> Rate:
    def run() -> int:
        graph = IdentityGraph()
        apply = graph.apply
        for obs in work.observations:
            apply(obs)
        return len(work.observations)

    return _rate(run)


def bench_full_path(work: Workload) -> Rate:
    def run() -> int:
        normalize.cache_clear()
        rules_module.clear_caches()
        rules, hasher, graph = MergeRules(), IdentifierHasher(b"bench-secret"), IdentityGraph()
        apply = graph.apply
        for event in work.events:
            apply(observation_from_event(event, rules, hasher, REGION))
        return len(work.events)

    return _rate(run)


def summary(work: Workload) -> dict[str, int]:
    graph = IdentityGraph()
    merges = conflicts = 0
    for obs in work.observations:
        applied = graph.apply(obs)
        merges += len(applied.merges)
        conflicts += len(applied.conflicts)
    nodes: set[Node] = {n for o in work.observations for n in o.nodes}
    return {"nodes": len(nodes), "customers": len(graph), "merges": merges, "conflicts": conflicts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000, help="observations per run")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()

    work = build(args.n)
    shape = summary(work)
    apply_rate = bench_apply(work)
    full_rate = bench_full_path(work)

    print(f"identity core, {args.n:,} observations, median of 3 runs")
    print(f"  graph: {', '.join(f'{k} {v:,}' for k, v in shape.items())}")
    print(f"  {'path':<36} {'per CPU-s':>12} {'per wall-s':>12}")
    for label, rate in (
        ("(a) apply, pre-built observations", apply_rate),
        ("(b) Event -> observation -> apply", full_rate),
    ):
        print(f"  {label:<36} {rate.cpu:>12,.0f} {rate.wall:>12,.0f}")
    if args.json:
        figures = {
            "identity_core_resolutions_per_s": round(apply_rate.cpu),
            "identity_core_full_path_per_s": round(full_rate.cpu),
            "identity_core_resolutions_per_wall_s": round(apply_rate.wall),
            "identity_core_full_path_per_wall_s": round(full_rate.wall),
            "observations": args.n,
        }
        args.json.write_bytes(orjson.dumps(figures, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
