"""``cdp db migrate`` and ``cdp topics create | list``."""

from __future__ import annotations

from typing import Annotated

import typer

from cdp.cli.output import console, fail, print_json
from cdp.config import load_settings
from cdp.errors import CDPError
from cdp.kafka.topics import create_topics, describe_topics
from cdp.store.connect import connection
from cdp.store.migrate import migrate

db_app = typer.Typer(help="PostgreSQL schema.")
topics_app = typer.Typer(help="Kafka topics of the contract.")


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply pending SQL migrations from schemas/sql (idempotent)."""
    try:
        with connection(load_settings(), autocommit=True) as conn:
            applied = migrate(conn)
    except CDPError as exc:
        fail(str(exc))
    console.print(
        f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else "")
    )


@topics_app.command("create")
def topics_create() -> None:
    """Create the contract's topics; existing ones are left unchanged."""
    try:
        result = create_topics(load_settings())
    except CDPError as exc:
        fail(str(exc))
    for name, what in result.items():
        print(f"{what:<8} {name}")


@topics_app.command("list")
def topics_list(json_output: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The contract's topics with partitions, config and whether they exist."""
    try:
        rows = describe_topics(load_settings())
    except CDPError as exc:
        fail(str(exc))
    if json_output:
        print_json(rows)
        return
    for row in rows:
        mark = "" if row["exists"] else "  (missing: run `cdp topics create`)"
        print(f"{row['name']:<32} {row['partitions']:>3}p  {row['purpose']}{mark}")
