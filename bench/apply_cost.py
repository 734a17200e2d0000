"""CPU cost of each processor's ``apply`` per event, in-process, without Kafka.

    .venv/bin/python bench/apply_cost.py [--events N] [--batch N] [--profile PROCESSOR]

Generated events go through identity, its resolved records through journey, archive
and actions, batch by batch, each inside its own PostgreSQL transaction (a private
schema on the local stack), as the workers run them but without the consumer and
the producer. Prints µs per event (wall and CPU of this process) per processor, so
the stage costs are measured apart from Faust, Kafka and each other; ``--profile``
prints the top cProfile entries of one processor.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import base_settings, bench_env, build_workload  # noqa: E402
from cdp.pipeline.records import Record  # noqa: E402
from cdp.pipeline.runner import Processor  # noqa: E402
from streams.registry import PROCESSORS  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=20_000)
    p.add_argument("--batch", type=int, default=2000)
    p.add_argument("--profile", choices=sorted(PROCESSORS), default=None)
    args = p.parse_args()

    workload = build_workload(args.events)
    with bench_env(base_settings(), "apply") as env:
        s = env.settings
        raw = [
            Record(s.topic(f"touchpoints.{m.channel}"), 0, i, m.key, m.value)
            for i, m in enumerate(workload.msgs)
        ]
        conn = env.connect()
        make: dict[str, Callable[[], Processor]] = {
            name: (lambda spec=spec: spec.factory(s)) for name, spec in PROCESSORS.items()
        }
        print(f"{len(raw)} events, batches of {args.batch}")
        print(f"{'processor':<10} {'records':>8} {'wall µs/ev':>11} {'cpu µs/ev':>10}")
        resolved = run(conn, make["identity"](), raw, args.batch, args.profile == "identity")
        topic = s.topic("touchpoints.resolved")
        downstream = [
            Record(topic, 0, i, o.key, o.value) for i, o in enumerate(resolved) if o.topic == topic
        ]
        for name in ("journey", "archive", "actions"):
            run(conn, make[name](), downstream, args.batch, args.profile == name)
        conn.close()


def run(
    conn: Any, processor: Processor, records: list[Record], batch: int, profile: bool
) -> list[Any]:
    outputs: list[Any] = []
    prof = cProfile.Profile() if profile else None
    wall0, cpu0 = time.perf_counter(), time.process_time()
    if prof:
        prof.enable()
    for i in range(0, len(records), batch):
        with conn.transaction():
            outputs += processor.apply(conn, records[i : i + batch]).outputs
    if prof:
        prof.disable()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    n = max(1, len(records))
    print(f"{processor.name:<10} {len(records):>8} {wall / n * 1e6:>11.1f} {cpu / n * 1e6:>10.1f}")
    closer = getattr(processor, "close", None)
    if callable(closer):
        closer()
    if prof:
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(25)
        print(out.getvalue())
    return outputs


if __name__ == "__main__":
    main()
