"""``make bench``: every benchmark on this machine, one table, one JSON file.

    .venv/bin/python bench/run.py [--events N] [--quick] [--skip-analytics-10m] [--profile]

Parts (docs/benchmarks.md says what each measures):
  1. end-to-end throughput, 1 and 2 worker processes per processor (identity, journey,
     archive), on pre-produced generated events, until every processor's lag is 0;
  2. freshness: produce -> journey stage visible in PostgreSQL, at half the 1-worker rate;
  3. baselines on the same records: a raw confluent-kafka + orjson consumer, and a naive
     consume-and-commit-per-event PostgreSQL design;
  4. the identity core (bench/identity_core.py);
  5. the analyses over 1M and 10M lake rows (bench/analytics.py).
Uses the local stack (or CDP_KAFKA_BOOTSTRAP + CDP_DATABASE_URL) with a private topic
prefix, schema and lake per measurement, all removed afterwards. Writes
bench/results/<YYYY-MM-DD>.json (``-quick`` suffixed for --quick).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import base_settings, build_workload  # noqa: E402
from bench.parts import E2EResult, run_baselines, run_e2e, run_freshness  # noqa: E402
from cdp.stack import Stack  # noqa: E402

RESULTS = ROOT / "bench" / "results"
NOISE = (
    "shared, noisy machine: Kafka, PostgreSQL, the workers and the load generator all "
    "share the same cores; treat figures as +-20% and compare ratios, not absolutes"
)
TARGETS = {
    "e2e_events_per_s": (">=", 20_000, "end-to-end events/s, 1 worker per processor"),
    "freshness_p99_s": ("<=", 1.0, "p99 produce -> journey visible, at half load"),
    "identity_core_resolutions_per_s": (">=", 100_000, "identity core resolutions/s"),
    "analytics.funnel_10m_s": ("<=", 2.0, "funnel over 10M events"),
    "analytics.ropo_10m_s": ("<=", 2.0, "ROPO over 10M events"),
}


def log(msg: str) -> None:
    print(msg, flush=True)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--events", type=int, default=None, help="events per e2e run (100k; 20k with --quick)"
    )
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    p.add_argument("--skip-analytics-10m", action="store_true")
    p.add_argument("--skip-analytics", action="store_true", help="no analytics at all")
    p.add_argument("--repeats", type=int, default=1, help="e2e runs per worker count (median)")
    p.add_argument("--freshness-s", type=float, default=None, help="produce duration (60)")
    p.add_argument("--profile", action="store_true", help="py-spy identity+journey in e2e-1")
    p.add_argument("--out", type=Path, default=None, help="JSON path (bench/results/DATE.json)")
    return p.parse_args()


def machine(settings: Any) -> dict[str, Any]:
    import confluent_kafka
    import psycopg

    from cdp.stack.kafka import KAFKA_VERSION

    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "kafka_version": "external (unknown)" if settings.external_services() else KAFKA_VERSION,
        "confluent_kafka": confluent_kafka.__version__,
        "librdkafka": confluent_kafka.libversion()[0],
        "load_avg_start": [round(x, 2) for x in os.getloadavg()],
        "note": NOISE,
    }
    try:
        with psycopg.connect(settings.dsn()) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            info["postgres_version"] = row[0] if row else None
    except psycopg.Error:
        info["postgres_version"] = None
    return info


def run_script(args: list[str], timeout: float) -> dict[str, Any]:
    """Run a part benchmark (identity_core.py / analytics.py) with ``--json``."""
    with tempfile.TemporaryDirectory(prefix="cdp-bench-part-") as tmp:
        out = Path(tmp) / "out.json"
        cmd = [sys.executable, *args, "--json", str(out)]
        log(f"  $ {' '.join(Path(a).name if a.endswith('.py') else a for a in cmd[1:])}")
        proc = subprocess.run(cmd, cwd=ROOT, timeout=timeout, check=False)
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"{args[0]} failed with exit code {proc.returncode}")
        data: dict[str, Any] = json.loads(out.read_text())
        return data


def e2e_figures(runs: list[E2EResult]) -> dict[str, Any]:
    return {
        "events_per_s": statistics.median(r.events_per_s for r in runs),
        "events_per_s_with_startup": statistics.median(r.events_per_s_with_startup for r in runs),
        "runs": [
            {
                "records": r.records,
                "seconds": round(r.seconds, 2),
                "seconds_with_startup": round(r.seconds_with_startup, 2),
                "events_per_s": round(r.events_per_s),
                "identity_stage_events_per_s": round(r.records / r.identity_seconds),
                "produce_s": round(r.produce_s, 2),
                "checks": r.checks,
            }
            for r in runs
        ],
    }


def lookup(results: dict[str, Any], dotted: str) -> Any:
    value: Any = results
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def judge(results: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, (op, target, what) in TARGETS.items():
        value = lookup(results, key)
        if value is None:
            verdict = "not run"
        else:
            ok = value >= target if op == ">=" else value <= target
            verdict = "pass" if ok else "fail"
        out[key] = {"target": f"{op} {target:,}", "value": value, "result": verdict, "what": what}
    return out


def print_table(results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    def fmt(v: Any, unit: str = "") -> str:
        if v is None:
            return "-"
        if isinstance(v, float) and v < 100:
            return f"{v:.3f}{unit}"
        return f"{v:,.0f}{unit}"

    t = Table("measurement", "value", "note", title=f"cdp benchmarks {results['date']}")
    e1, e2 = results.get("e2e_events_per_s"), results.get("e2e_events_per_s_2_workers")
    raw, naive = (
        results.get("baseline_raw_consumer_events_per_s"),
        results.get("baseline_naive_events_per_s"),
    )
    d = results.get("details", {})
    for label, value, key in (
        ("e2e, 1 worker/processor", e1, "e2e_1"),
        ("e2e, 2 workers/processor", e2, "e2e_2"),
    ):
        incl = fmt(lookup(d, f"{key}.events_per_s_with_startup"))
        t.add_row(label, fmt(value, " ev/s"), f"{incl} ev/s incl. start-up")
    f = d.get("freshness", {})
    offered = f.get("offered_rate")
    for q in ("p50", "p95", "p99"):
        t.add_row(f"freshness {q}", fmt(results.get(f"freshness_{q}_s"), " s"),
                  f"at {fmt(offered)} ev/s offered" if offered else "")  # fmt: skip
    t.add_row("baseline: raw consumer + orjson", fmt(raw, " ev/s"), "1 process")
    t.add_row("baseline: naive commit/event", fmt(naive, " ev/s"), "1 process")
    t.add_row("identity core", fmt(results.get("identity_core_resolutions_per_s"), " /s"),
              "per CPU-second, pre-built observations")  # fmt: skip
    for k, v in (results.get("analytics") or {}).items():
        t.add_row(f"analytics {k}", fmt(v), "")
    Console(width=120).print(t)

    r = Table("ratio", "value", title="ratios")
    for label, a, b in (
        ("e2e / raw consumer", e1, raw),
        ("e2e / naive", e1, naive),
        ("e2e 2 workers / 1 worker", e2, e1),
    ):
        r.add_row(label, f"{a / b:.2f}x" if a and b else "-")
    Console(width=120).print(r)

    g = Table("target", "threshold", "value", "result", title="targets")
    for v in results["targets"].values():
        style = {"pass": "green", "fail": "red"}.get(v["result"], "yellow")
        g.add_row(v["what"], v["target"], fmt(v["value"]), f"[{style}]{v['result']}")
    Console(width=120).print(g)
    print(f"note: {NOISE}")


def main() -> None:
    args = parse_args()
    events = args.events or (20_000 if args.quick else 100_000)
    fresh_s = args.freshness_s or (15.0 if args.quick else 60.0)
    today = dt.date.today().isoformat()
    out = args.out or RESULTS / (f"{today}-quick.json" if args.quick else f"{today}.json")
    settings = base_settings()
    log("starting the stack (Kafka + PostgreSQL)...")
    Stack(settings).up()
    started = time.time()
    results: dict[str, Any] = {"date": today, "quick": args.quick, "events": events}
    results["machine"] = machine(settings)
    details: dict[str, Any] = {}
    results["details"] = details

    log(f"\n[workload] generating ~{events:,} events")
    t0 = time.perf_counter()
    work = build_workload(events)
    log(
        f"  {len(work.msgs):,} records ({work.distinct:,} distinct messageIds, "
        f"{work.customers:,} people, {work.days} days) in {time.perf_counter() - t0:.1f}s"
    )
    details["workload"] = {
        "records": len(work.msgs),
        "distinct_message_ids": work.distinct,
        "people": work.customers,
        "days": work.days,
        "invalid_skipped": work.invalid,
    }

    # 1. end to end
    for workers in (1, 2):
        runs = []
        for i in range(args.repeats):
            log(f"\n[1] end to end, {workers} worker(s) per processor, run {i + 1}")
            profile_dir = (
                Path(tempfile.mkdtemp(prefix="cdp-bench-profile-"))
                if args.profile and workers == 1 and i == 0
                else None
            )
            r = run_e2e(settings, work, workers, log, profile_dir=profile_dir)
            log(
                f"  {r.events_per_s:,.0f} events/s ({r.seconds:.1f}s from first applied batch; "
                f"{r.seconds_with_startup:.1f}s incl. start-up) checks {r.checks}"
            )
            if r.profile:
                details["profile"] = r.profile
            runs.append(r)
        details[f"e2e_{workers}"] = e2e_figures(runs)
    results["e2e_events_per_s"] = round(details["e2e_1"]["events_per_s"])
    results["e2e_events_per_s_2_workers"] = round(details["e2e_2"]["events_per_s"])

    # 2. freshness at half the 1-worker maximum
    rate = max(100.0, results["e2e_events_per_s"] / 2)
    log(f"\n[2] freshness at {rate:,.0f} events/s for {fresh_s:.0f}s")
    fresh_work = build_workload(int(rate * fresh_s * 1.1) + 1000, seed=11)
    fr = run_freshness(settings, fresh_work, rate, fresh_s, log)
    details["freshness"] = {
        "offered_rate": round(fr.offered_rate),
        "achieved_rate": round(fr.achieved_rate),
        "produced_distinct": fr.produced,
        "matched_in_journey": fr.matched,
        "journey_s": fr.journey,
        "identity_s": fr.identity,
        "drain_after_producing_s": fr.drain_after_s,
    }
    for q in ("p50", "p95", "p99"):
        results[f"freshness_{q}_s"] = fr.journey.get(q)
    log(f"  journey {fr.journey}; identity {fr.identity}; achieved {fr.achieved_rate:,.0f}/s")

    # 3. baselines
    log("\n[3] baselines on the same records")
    naive_limit = 3_000 if args.quick else 50_000
    b = run_baselines(
        settings, work, log, naive_limit, 10.0 if args.quick else 45.0, 1 if args.quick else 3
    )
    details["baselines"] = b
    results["baseline_raw_consumer_events_per_s"] = round(b["raw"])
    results["baseline_naive_events_per_s"] = round(b["naive"])
    e1 = results["e2e_events_per_s"]
    results["ratios"] = {
        "e2e_over_raw": round(e1 / b["raw"], 3),
        "e2e_over_naive": round(e1 / b["naive"], 2),
        "e2e_2_workers_over_1": round(results["e2e_events_per_s_2_workers"] / e1, 2),
    }

    # 4. identity core
    log("\n[4] identity core")
    n = ["--n", "50000"] if args.quick else []
    core = run_script(["bench/identity_core.py", *n], timeout=1200)
    results["identity_core_resolutions_per_s"] = core.get("identity_core_resolutions_per_s")
    details["identity_core"] = core

    # 5. analyses
    if args.skip_analytics:
        results["analytics"] = None
    else:
        sizes = "1m" if (args.quick or args.skip_analytics_10m) else "1m,10m"
        log(f"\n[5] analyses over {sizes}")
        lakes = Path(tempfile.mkdtemp(prefix="cdp-bench-lakes-"))
        try:
            ana = run_script(
                ["bench/analytics.py", "--sizes", sizes, "--dir", str(lakes)], timeout=3600
            )
        finally:
            shutil.rmtree(lakes, ignore_errors=True)
        results["analytics"] = ana.get("analytics")

    results["machine"]["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    results["wall_s"] = round(time.time() - started)
    results["targets"] = judge(results)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print_table(results)
    log(f"\nwrote {out} (whole bench {results['wall_s']}s)")


if __name__ == "__main__":
    main()
