"""``cdp journey show | stuck | stats``: the read side of customer journeys."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from cdp.cli.output import console, fail, print_json
from cdp.config import load_settings
from cdp.errors import CDPError
from cdp.journey.queries import JourneyQueries, resolve_customer
from cdp.journey.rules import STAGES
from cdp.store.connect import connection

app = typer.Typer(help="Customer journeys: stage, cart, timeline, stuck customers.")
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]


@app.command()
def show(
    ref: Annotated[str, typer.Argument(help="TYPE:VALUE (e.g. email:ann@example.nl) or cus_...")],
    json_output: JsonOpt = False,
) -> None:
    """A customer's stage, cart, flags, latest touchpoint per channel and timeline."""
    settings = load_settings()
    try:
        with connection(settings) as conn:
            cid = resolve_customer(conn, settings, ref)
            if cid is None:
                fail(f"no customer for {ref}", code=3)
            data = JourneyQueries(conn).show(cid)
    except CDPError as exc:
        fail(str(exc))
    if json_output:
        print_json(data)
        return
    _print_show(data)


@app.command()
def stuck(
    stage: Annotated[
        str | None, typer.Option(help=f"only this stage ({', '.join(STAGES)})")
    ] = None,
    older_than: Annotated[
        float | None,
        typer.Option(
            "--older-than",
            help="in the stage for more than DAYS before the watermark"
            " (default with --stage: the rules' stuck_after_days)",
            metavar="DAYS",
        ),
    ] = None,
    limit: Annotated[int, typer.Option(help="at most this many customers")] = 100,
    json_output: JsonOpt = False,
) -> None:
    """Customers flagged stuck, or (with --stage/--older-than) waiting too long in a stage.

    Ages are measured against the journey watermark (latest event time), not the clock.
    """
    try:
        with connection(load_settings()) as conn:
            data = JourneyQueries(conn).stuck(stage, older_than, limit)
    except CDPError as exc:
        fail(str(exc))
    if json_output:
        print_json(data)
        return
    crit = data["criteria"]
    what = (
        "flagged stuck"
        if "flag" in crit
        else f"in {crit['stage'] or 'any stage'} for more than {crit['older_than_days']:g} days"
    )
    console.print(
        f"watermark: {_ts(data['watermark'])} UTC  customers {what}: {len(data['customers'])}"
    )
    if not data["customers"]:
        return
    table = Table("customer", "stage", "since", "days", "cart", "items", "last event", "channel",
                  "flags")  # fmt: skip
    table.columns[0].no_wrap = True
    for c in data["customers"]:
        table.add_row(
            c["customer_id"], c["stage"], _ts(c["stage_since"]), _num(c["days_in_stage"]),
            f"{c['cart_value']:.2f}", str(c["cart_items"]), _ts(c["last_event_at"]),
            c["last_channel"] or "-", ", ".join(c["flags"]),
        )  # fmt: skip
    console.print(table)


@app.command()
def stats(json_output: JsonOpt = False) -> None:
    """Customers per stage, per stage by first channel, and flag counts."""
    try:
        with connection(load_settings()) as conn:
            data = JourneyQueries(conn).stats()
    except CDPError as exc:
        fail(str(exc))
    if json_output:
        print_json(data)
        return
    console.print(f"customers: {data['customers']}  watermark: {_ts(data['watermark'])} UTC  "
                  + "  ".join(f"{k}: {v}" for k, v in data["flags"].items()))  # fmt: skip
    channels = sorted({ch for per in data["stages_by_first_channel"].values() for ch in per})
    table = Table("stage", "customers", *channels)
    for stage, n in data["stages"].items():
        per = data["stages_by_first_channel"].get(stage, {})
        table.add_row(stage, str(n), *(str(per.get(ch, 0)) for ch in channels))
    console.print(table)


def _print_show(d: dict[str, Any]) -> None:
    flags = f"  [bold yellow]{', '.join(d['flags'])}[/]" if d["flags"] else ""
    console.print(
        f"[bold]{d['customer_id']}[/]  stage: [bold]{d['stage'] or '-'}[/] since "
        f"{_ts(d['stage_since'])} ({_num(d['days_in_stage'])} days){flags}"
    )
    console.print(
        f"first: {d['first_channel'] or '-'} {_ts(d['first_seen'])}  last: "
        f"{d['last_channel'] or '-'} {_ts(d['last_event_at'])}  purchases: "
        f"{d['purchase_count']} ({d['revenue']:.2f})  watermark: {_ts(d['watermark'])} (times UTC)"
    )
    if d["cart"]:
        cart = Table("product", "name", "qty", "price", "added", title="cart")
        for line in d["cart"]:
            added = line.get("added_at")
            cart.add_row(str(line.get("product_id")), str(line.get("name") or ""),
                         _num(line.get("quantity")), _num(line.get("price")),
                         _ts(datetime.fromisoformat(added)) if added else "-")  # fmt: skip
        console.print(cart)
        console.print(f"cart value: {d['cart_value']:.2f}")
    else:
        console.print("cart: empty")
    if d["last_touchpoints"]:
        touch = Table("channel", "last touchpoint", "at", title="last touchpoint per channel")
        for channel, t in d["last_touchpoints"].items():
            touch.add_row(channel, t["event"], _ts(datetime.fromisoformat(t["at"])))
        console.print(touch)
    timeline = Table("event time", "from", "to", "message id", title="timeline")
    for t in d["timeline"]:
        to = f"[yellow]{t['to']}[/]" if t["kind"] == "flag" else t["to"]
        timeline.add_row(_ts(t["event_time"]), t["from"] or "-", to, t["message_id"] or "")
    console.print(timeline)


def _ts(value: datetime | None) -> str:
    """Compact UTC time for tables (``--json`` keeps full ISO-8601 with the zone)."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if value else "-"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="journey")
