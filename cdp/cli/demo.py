"""``cdp demo``: the whole platform end to end on the local stack."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cdp.cli.output import console, fail, print_json
from cdp.config import load_settings
from cdp.errors import CDPError


def demo_command(
    customers: Annotated[int, typer.Option(help="people to simulate")] = 2000,
    days: Annotated[int, typer.Option(help="days of history")] = 90,
    seed: int = 42,
    report: Annotated[Path, typer.Option(help="where to write the HTML report")] = Path(
        "report.html"
    ),
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Start everything, send generated traffic, wait until applied, summarise."""
    from cdp.demo import DemoOptions, run_demo

    try:
        summary = run_demo(load_settings(), DemoOptions(customers, days, seed, report), console)
    except CDPError as exc:
        fail(str(exc))
    if json_output:
        print_json(summary)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)
