"""``cdp sources add | list | revoke``: write keys of the HTTP collector;
``cdp sources add-read-key | list-read-keys | revoke-read-key``: read keys of its
profile API (``GET /v1/profiles/...``)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from cdp.cli.output import console, fail, print_json
from cdp.collector.profiles import add_read_key, list_read_keys, revoke_read_key
from cdp.collector.sources import add_source, list_sources, revoke_source
from cdp.config import load_settings
from cdp.errors import CDPError
from cdp.events.envelope import CHANNELS
from cdp.store.connect import connection

app = typer.Typer(
    help="Sources (write keys) and read keys (profile API) of the HTTP collector.",
    no_args_is_help=True,
)


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="unique source name, e.g. webshop-nl")],
    channel: Annotated[str, typer.Option(help=f"one of {', '.join(CHANNELS)}")],
    write_key: Annotated[
        str | None, typer.Option(help="use this key instead of a generated one")
    ] = None,
) -> None:
    """Create a source and print its write key (shown only now: only its hash is stored)."""
    try:
        with connection(load_settings(), autocommit=True) as conn:
            key = add_source(conn, name, channel, write_key)
    except CDPError as exc:
        fail(str(exc))
    print(key)


@app.command("list")
def list_(json_output: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Sources with channel, creation and revocation time (never keys)."""
    try:
        with connection(load_settings(), autocommit=True) as conn:
            sources = list_sources(conn)
    except CDPError as exc:
        fail(str(exc))
    if json_output:
        print_json([s.as_dict() for s in sources])
        return
    table = Table("name", "channel", "created", "revoked")
    for s in sources:
        created = s.created_at.isoformat(timespec="seconds") if s.created_at else ""
        revoked = s.revoked_at.isoformat(timespec="seconds") if s.revoked_at else ""
        table.add_row(s.name, s.channel, created, revoked)
    console.print(table)


@app.command("revoke")
def revoke(name: str) -> None:
    """Revoke a source's write key; running collectors refuse it within 2 s (cache TTL)."""
    try:
        with connection(load_settings(), autocommit=True) as conn:
            revoke_source(conn, name)
    except CDPError as exc:
        fail(str(exc))
    console.print(f"revoked {name}")


@app.command("add-read-key")
def add_read_key_command(
    name: Annotated[str, typer.Argument(help="unique read key name, e.g. crm-sync")],
) -> None:
    """Create a read key for the profile API and print it (shown only now: only its hash
    is stored). Read keys cannot send events; write keys cannot read profiles."""
    try:
        with connection(load_settings(), autocommit=True) as conn:
            key = add_read_key(conn, name)
    except CDPError as exc:
        fail(str(exc))
    print(key)


@app.command("list-read-keys")
def list_read_keys_command(json_output: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Read keys with creation and revocation time (never the keys)."""
    try:
        with connection(load_settings(), autocommit=True) as conn:
            keys = list_read_keys(conn)
    except CDPError as exc:
        fail(str(exc))
    if json_output:
        print_json([k.as_dict() for k in keys])
        return
    table = Table("name", "created", "revoked")
    for k in keys:
        created = k.created_at.isoformat(timespec="seconds") if k.created_at else ""
        revoked = k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else ""
        table.add_row(k.name, created, revoked)
    console.print(table)


@app.command("revoke-read-key")
def revoke_read_key_command(name: str) -> None:
    """Revoke a read key; the profile API refuses it from the next request on."""
    try:
        with connection(load_settings(), autocommit=True) as conn:
            revoke_read_key(conn, name)
    except CDPError as exc:
        fail(str(exc))
    console.print(f"revoked read key {name}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="sources")
