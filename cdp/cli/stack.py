"""``cdp stack up | down | status | logs``."""

from __future__ import annotations

from typing import Annotated

import typer

from cdp.cli.output import console, fail, print_json
from cdp.config import load_settings
from cdp.errors import CDPError
from cdp.stack import Stack
from cdp.stack.process import tail

app = typer.Typer(help="Run the local stack: a real Kafka broker and PostgreSQL server.")


@app.command()
def up() -> None:
    """Start Kafka and PostgreSQL (idempotent); returns when both answer."""
    stack = Stack(load_settings())
    if stack.external:
        console.print("CDP_KAFKA_BOOTSTRAP and CDP_DATABASE_URL are set: using those services.")
        return
    try:
        with console.status("starting Kafka and PostgreSQL..."):
            stack.up()
    except CDPError as exc:
        fail(str(exc))
    status = stack.status()
    print(f"kafka     {status['kafka']['bootstrap']}")
    print(f"postgres  {load_settings().dsn()}")


@app.command()
def down() -> None:
    """Stop both components cleanly."""
    try:
        Stack(load_settings()).down()
    except CDPError as exc:
        fail(str(exc))
    console.print("stack stopped")


@app.command()
def status(json_output: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show each component, its address and whether it runs."""
    data = Stack(load_settings()).status()
    if json_output:
        print_json(data)
        return
    if data["external"]:
        print(f"external services: kafka {data['kafka']['bootstrap']}, "
              f"postgres {data['postgres']['url']}")  # fmt: skip
        return
    for name, address in (("kafka", "bootstrap"), ("postgres", "url")):
        comp = data[name]
        state = f"running (pid {comp['pid']})" if comp["running"] else "stopped"
        print(f"{name:<9} {state:<22} {comp[address]}")


@app.command()
def logs(
    component: Annotated[str, typer.Argument(help="kafka or postgres")] = "kafka",
    lines: Annotated[int, typer.Option("-n")] = 50,
) -> None:
    """Print the last lines of a component's log."""
    stack = Stack(load_settings())
    if component not in ("kafka", "postgres"):
        fail("component must be kafka or postgres")
    log = stack.kafka.log_file if component == "kafka" else stack.postgres.log_file
    print(tail(log, lines))
