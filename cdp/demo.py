"""The main job end to end on the local stack (``make demo`` / ``cdp demo``).

Starts the stack, migrates, creates topics, starts the identity, journey, archive and
actions processors as separate worker processes, sends generated omnichannel traffic, waits
(with a progress bar on the processors' lag) until everything is applied, then prints
a summary and writes the HTML report. The same seed sends the same messageIds, so a
second run is de-duplicated and leaves the same state.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cdp.config import Settings
from cdp.errors import CDPError
from cdp.kafka.producer import Producer
from cdp.kafka.topics import create_topics
from cdp.pipeline.lag import processor_lag
from cdp.stack import Stack
from cdp.stack.workers import start_worker
from cdp.store.connect import connection
from cdp.store.migrate import migrate

PROCESSORS = ("identity", "journey", "archive", "actions")


@dataclass(frozen=True)
class DemoOptions:
    customers: int = 2000
    days: int = 90
    seed: int = 42
    report: Path = Path("report.html")
    drain_timeout_s: float = 900.0


def run_demo(settings: Settings, opts: DemoOptions, console: Console) -> dict[str, Any]:
    stack = Stack(settings)
    with console.status("starting the local stack (Kafka + PostgreSQL)..."):
        stack.up()
    console.print(f"kafka     {settings.bootstrap()}")
    console.print(f"postgres  {stack.status()['postgres']['url']}")
    with connection(settings, autocommit=True) as conn:
        migrate(conn)
    create_topics(settings)
    for name in PROCESSORS:
        pid = start_worker(settings, name)
        console.print(f"worker    {name} (pid {pid})")

    sent = _send_traffic(settings, opts, console)
    _wait_drained(settings, opts, console)
    summary = _summary(settings)
    summary["events_sent"] = sent
    _print_summary(summary, console)
    report = _write_report(settings, opts.report)
    summary["report"] = str(report)
    console.print(f"\n[bold]report[/]    {report}")
    console.print(
        "\nnext:\n"
        '  .venv/bin/cdp analytics sql -c "SELECT channel, count(*) FROM touchpoints GROUP BY 1"\n'
        "  .venv/bin/cdp identity stats\n"
        f"  .venv/bin/cdp identity lookup {summary.get('example_customer') or 'CUSTOMER_ID'}\n"
        "  .venv/bin/cdp analytics ropo\n"
        "  .venv/bin/cdp actions list        # offers and sales-rep notifications fired\n"
        "  make stop            # stops the workers, Kafka and PostgreSQL"
    )
    return summary


def _send_traffic(settings: Settings, opts: DemoOptions, console: Console) -> int:
    from cdp.generate import generate

    gen = generate(opts.customers, opts.days, opts.seed)
    sent = 0
    columns = (TextColumn("generating + producing"), BarColumn(),
               TextColumn("day {task.completed}/{task.total}"), TimeElapsedColumn())  # fmt: skip
    with (
        Progress(*columns, console=console, transient=True) as bar,
        Producer(settings, source="demo") as producer,
    ):
        task = bar.add_task("produce", total=opts.days)
        for event in gen.events(on_day=lambda d, _n: bar.update(task, completed=d)):
            producer.send(event)
            sent += 1
    console.print(
        f"produced  {sent} events ({opts.customers} people, {opts.days} days, seed {opts.seed})"
    )
    return sent


def _wait_drained(settings: Settings, opts: DemoOptions, console: Console) -> None:
    from streams.registry import PROCESSORS as SPECS

    start = time.monotonic()
    columns = (TextColumn("[bold]{task.description:<9}"), BarColumn(),
               TextColumn("lag {task.fields[lag]}"), TimeElapsedColumn())  # fmt: skip
    with connection(settings, autocommit=True) as conn, Progress(*columns, console=console) as bar:
        tasks = {n: bar.add_task(n, total=None, lag="?") for n in PROCESSORS}
        peak: dict[str, int] = {}
        while True:
            lags = {
                n: processor_lag(settings, conn, n, SPECS[n].sources(settings)) for n in PROCESSORS
            }
            for n, lag in lags.items():
                peak[n] = max(peak.get(n, 0), lag)
                total = max(peak[n], 1)
                bar.update(tasks[n], total=total, completed=total - lag, lag=lag)
            if not any(lags.values()):
                break
            if time.monotonic() - start > opts.drain_timeout_s:
                raise CDPError(
                    f"the pipeline did not drain in {opts.drain_timeout_s:.0f}s (lag {lags}); "
                    f"see the worker logs in {settings.state_dir / 'workers'}"
                )
            time.sleep(0.5)
    console.print(f"drained   in {time.monotonic() - start:.1f}s")


def _summary(settings: Settings) -> dict[str, Any]:
    from cdp.activation.queries import stats as action_stats
    from cdp.analytics import attribution, connect, paths, ropo

    out: dict[str, Any] = {}
    with connection(settings) as conn:

        def one(sql: str) -> Any:
            row = conn.execute(sql).fetchone()
            return row[0] if row else None

        out["customers"] = one("SELECT count(DISTINCT customer_id) FROM identities")
        out["identifiers"] = one("SELECT count(*) FROM identities")
        out["merges"] = one("SELECT count(*) FROM merges")
        out["conflicts"] = one("SELECT count(*) FROM conflicts")
        out["stages"] = dict(
            conn.execute(
                "SELECT stage, count(*) FROM journey GROUP BY 1 ORDER BY 2 DESC"
            ).fetchall()
        )
        row = conn.execute(
            "SELECT customer_id FROM identities GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()
        out["example_customer"] = row[0] if row else None
        out["actions"] = action_stats(conn)["rules"]
    con = connect(settings)
    try:
        out["ropo"] = ropo(con)
        out["paths"] = paths(con, limit=5)
        out["attribution"] = attribution(con)
    finally:
        con.close()
    return out


def _print_summary(s: dict[str, Any], console: Console) -> None:
    console.print(
        f"\n[bold]customers[/] {s['customers']}  identifiers {s['identifiers']}  "
        f"merges {s['merges']}  conflicts {s['conflicts']}"
    )
    stages = Table("stage", "customers", title="journey stages")
    for stage, n in s["stages"].items():
        stages.add_row(stage, str(n))
    console.print(stages)
    r = s["ropo"]
    console.print(
        f"ROPO rate {r.get('ropo_rate', 0):.1%} (store purchases researched online), "
        f"showrooming rate {r.get('showrooming_rate', 0):.1%}"
    )
    paths = Table("path before first purchase", "customers", title="top channel paths")
    for p in s["paths"]:
        paths.add_row(str(p.get("path")), str(p.get("customers", p.get("count"))))
    console.print(paths)
    attr = s["attribution"]
    models = ("first_touch", "last_touch", "linear", "position_based", "markov")
    table = Table("channel", *models, title=f"attribution ({attr.get('purchases')} purchases)")
    for ch in attr.get("channels", []):
        table.add_row(ch["channel"], *(f"{ch.get(k, 0):.1f}" for k in models))
    console.print(table)
    outcomes = ("fired", "cancelled", "not_identified", "no_consent", "frequency_cap", "pending")
    actions = Table("rule", *outcomes, title="activation (actions decided per rule)")
    for rule, counts in sorted(s.get("actions", {}).items()):
        actions.add_row(rule, *(str(counts.get(k, 0)) for k in outcomes))
    console.print(actions)


def _write_report(settings: Settings, path: Path) -> Path:
    from cdp.analytics import connect
    from cdp.analytics.report import build_report

    con = connect(settings)
    try:
        html = build_report(con)
    finally:
        con.close()
    path.write_text(html, encoding="utf-8")
    return path.resolve()
