"""``cdp actions list | stats | replay | deliver``: activation's actions and deliveries."""

from __future__ import annotations

import logging
import signal
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from cdp.cli.output import console, fail, print_json
from cdp.config import load_settings
from cdp.errors import CDPError

app = typer.Typer(help="Activation: fired actions, their deliveries, replay.")
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]


@app.command("list")
def list_command(
    rule: Annotated[str | None, typer.Option(help="only this rule")] = None,
    outcome: Annotated[
        str,
        typer.Option(help="fired, cancelled, not_identified, no_consent, frequency_cap or all"),
    ] = "fired",
    limit: Annotated[int, typer.Option(help="at most this many")] = 50,
    json_output: JsonOpt = False,
) -> None:
    """Decided actions, latest due first (fired ones by default)."""
    from cdp.activation.queries import list_actions
    from cdp.store.connect import connection

    try:
        with connection(load_settings()) as conn:
            rows = list_actions(conn, rule, None if outcome == "all" else outcome, limit)
    except CDPError as exc:
        fail(str(exc))
    if json_output:
        print_json(rows)
        return
    table = Table("due (event time)", "rule", "action", "customer", "outcome", "deliveries")
    for r in rows:
        deliveries = ", ".join(f"{k}:{v}" for k, v in sorted(r["deliveries"].items()))
        table.add_row(
            r["due_at"].isoformat()[:19], r["rule"], r["action"], r["customer_id"],
            r["outcome"] + (" (deferred)" if r["deferred"] else ""), deliveries or "kafka",
        )  # fmt: skip
    console.print(table)
    console.print(f"{len(rows)} action(s)")


@app.command()
def stats(json_output: JsonOpt = False) -> None:
    """Fired per rule, suppressed by reason, deferred by quiet hours, deliveries."""
    from cdp.activation.queries import stats as get_stats
    from cdp.store.connect import connection

    try:
        with connection(load_settings()) as conn:
            data = get_stats(conn)
    except CDPError as exc:
        fail(str(exc))
    if json_output:
        print_json(data)
        return
    console.print(f"watermark: {data['watermark']}")
    cols = ("fired", "cancelled", "not_identified", "no_consent", "frequency_cap",
            "deferred_quiet_hours", "pending")  # fmt: skip
    table = Table("rule", *cols)
    for rule, counts in sorted(data["rules"].items()):
        table.add_row(rule, *(str(counts.get(c, 0)) for c in cols))
    console.print(table)
    console.print(f"webhooks: delivered {data['delivered']}, failed (dead) {data['failed']}")


@app.command()
def replay(
    action_id: Annotated[str | None, typer.Argument(help="one action (act_...)")] = None,
    since: Annotated[
        datetime | None, typer.Option(help="every action decided since (wall clock)")
    ] = None,
) -> None:
    """Re-deliver fired actions: re-publish them on cdp.actions and put their webhook
    deliveries back to pending. Receivers de-duplicate by action_id."""
    from cdp.activation.queries import replay_rows
    from cdp.pipeline.publish import Output, Publisher
    from cdp.store.connect import connection

    if (action_id is None) == (since is None):
        fail("give an ACTION_ID or --since")
    settings = load_settings()
    try:
        with connection(settings) as conn, conn.transaction():
            rows = replay_rows(conn, action_id, since)
        if action_id is not None and not rows:
            fail(f"no fired action {action_id}", code=3)
        topic = settings.topic("actions")
        outputs = [
            Output(topic, cid.encode(), value, (("action", action.encode()),))
            for cid, action, value in rows
        ]
        if outputs:
            Publisher(settings, "cdp-actions-replay").publish(outputs)
    except CDPError as exc:
        fail(str(exc))
    console.print(f"replayed {len(rows)} action(s)")


@app.command()
def deliver(
    once: Annotated[bool, typer.Option(help="attempt what is due now, then exit")] = False,
    interval: Annotated[float, typer.Option(help="seconds between polls")] = 1.0,
) -> None:
    """Deliver fired actions to their webhooks (signed, retried, dead-lettered)."""
    from cdp.activation.webhook import Deliverer
    from cdp.store.connect import connect, connection

    settings = load_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        deliverer = Deliverer()
        if once:
            with connection(settings, role=settings.db_role_worker) as conn:
                counts: dict[str, Any] = deliverer.run_once(conn)
            print_json(counts)
            return
        stop = {"flag": False}

        def _stop(*_: Any) -> None:
            stop["flag"] = True

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        deliverer.run(
            lambda: connect(settings, role=settings.db_role_worker),
            interval,
            lambda: stop["flag"],
        )
    except CDPError as exc:
        fail(str(exc))


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="actions")
