"""``cdp identity ...``: look up, resolve in bulk, explain and correct the graph."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.progress import Progress
from rich.table import Table

from cdp.cli.output import console, fail, print_json
from cdp.config import load_settings
from cdp.errors import CDPError
from cdp.identity import admin
from cdp.identity.queries import IdentityQueries
from cdp.store.connect import connection

app = typer.Typer(help="Identity resolution: look up, resolve, explain and correct customers.")
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]


@app.command()
def lookup(
    ref: Annotated[str, typer.Argument(help="TYPE:VALUE or a customer id")],
    json_output: JsonOpt = False,
) -> None:
    """The customer behind an identifier: identifiers, channels, latest touchpoints, stage."""
    settings = load_settings()
    try:
        with connection(settings) as conn:
            q = IdentityQueries(conn, settings)
            cid = q.customer_for(ref)
            if cid is None:
                fail(f"no customer for {ref}", code=3)
            profile = q.profile(cid)
    except CDPError as exc:
        fail(str(exc))
    if json_output:
        print_json(profile)
        return
    console.print(f"[bold]{profile['customer_id']}[/]  stage: {profile.get('stage') or '-'}"
                  f"  channels: {', '.join(profile['channels'])}")  # fmt: skip
    table = Table("type", "value", "first seen", "last seen", "channel")
    for i in profile["identifiers"]:
        table.add_row(i["type"], i["value"], str(i["first_seen"])[:19], str(i["last_seen"])[:19],
                      i["last_channel"])  # fmt: skip
    console.print(table)


def _inputs(path: str, column: str | None) -> Iterator[str]:
    stream = sys.stdin if path == "-" else Path(path).open()  # noqa: SIM115
    try:
        if column and path.endswith(".csv"):
            for row in csv.DictReader(stream):
                yield row[column]
            return
        for line in stream:
            line = line.strip()
            if not line:
                continue
            if column:
                yield str(orjson.loads(line)[column])
            else:
                yield line
    finally:
        if stream is not sys.stdin:
            stream.close()


@app.command()
def resolve(
    path: Annotated[
        str, typer.Argument(help="file of TYPE:VALUE lines (or JSONL/CSV), - for stdin")
    ] = "-",
    column: Annotated[
        str | None, typer.Option(help="JSONL key or CSV column holding TYPE:VALUE")
    ] = None,
    chunk: int = 5000,
) -> None:
    """Bulk: one JSON line per input, {"input": ..., "customer_id": ... or null}."""
    settings = load_settings()
    out = sys.stdout.buffer
    try:
        with connection(settings) as conn, Progress(console=console, transient=True) as bar:
            q = IdentityQueries(conn, settings)
            task = bar.add_task("resolving", total=None)
            buf: list[str] = []

            def flush() -> None:
                found = q.resolve_many(buf)
                for spec in buf:
                    out.write(orjson.dumps({"input": spec, "customer_id": found.get(spec)}) + b"\n")
                bar.advance(task, len(buf))
                buf.clear()

            for spec in _inputs(path, column):
                buf.append(spec)
                if len(buf) >= chunk:
                    flush()
            flush()
    except CDPError as exc:
        fail(str(exc))
    out.flush()


@app.command()
def history(customer: str, json_output: JsonOpt = False) -> None:
    """Merges and splits of a customer, with their evidence."""
    settings = load_settings()
    with connection(settings) as conn:
        q = IdentityQueries(conn, settings)
        rows = q.history(
            q.current(customer)
            if customer.startswith("cus_")
            else q.customer_for(customer) or customer
        )
    _show(rows, json_output, "no merges")


@app.command()
def conflicts(limit: int = 100, json_output: JsonOpt = False) -> None:
    """Merges refused by a limit, for review."""
    settings = load_settings()
    with connection(settings) as conn:
        rows = IdentityQueries(conn, settings).conflicts(limit)
    _show(rows, json_output, "no conflicts")


@app.command()
def stats(top: int = 10, json_output: JsonOpt = False) -> None:
    """Customers, identifiers per type, cluster sizes and the largest clusters."""
    settings = load_settings()
    with connection(settings) as conn:
        data = IdentityQueries(conn, settings).stats(top)
    if json_output:
        print_json(data)
        return
    console.print(
        f"customers: {data['customers']}  merges: {data['merges']}  conflicts: {data['conflicts']}"
    )
    console.print(f"identifiers: {data['identifiers_per_type']}")
    console.print(f"cluster sizes: {data['cluster_sizes']}")
    console.print(f"ignored values: {data['ignored_identifier_values']}")
    _show(data["largest_clusters"], False, "")


@app.command()
def merge(
    a: str, b: str,
    reason: Annotated[str, typer.Option(help="why (logged with the merge)")],
    force: Annotated[bool, typer.Option(help="ignore the per-type limits (logged)")] = False,
) -> None:  # fmt: skip
    """Merge two customers (TYPE:VALUE or customer ids)."""
    settings = load_settings()
    try:
        with connection(settings) as conn:
            m = admin.manual_merge(conn, settings, a, b, reason, force)
    except CDPError as exc:
        fail(str(exc))
    console.print(f"merged {m.loser} into {m.winner}")


@app.command()
def split(merge_id: int, json_output: JsonOpt = False) -> None:
    """Revert one merge and re-evaluate the links that came after it; the journeys of
    the customers involved are recomputed from their own events."""
    settings = load_settings()
    try:
        with connection(settings) as conn:
            result = admin.split(conn, merge_id)
    except CDPError as exc:
        fail(str(exc))
    j = result.journey
    if json_output:
        print_json({
            "merge_id": result.merge_id, "customers": result.customers,
            "journey": {"stages": j.stages, "deleted": j.deleted, "events": j.events,
                        "moved": j.moved, "transitions": j.transitions,
                        "consistent": j.consistent},
            "activation": result.activation,
        })  # fmt: skip
    else:
        console.print(f"split merge {merge_id}: now {len(result.customers)} customer(s); "
                      f"journeys recomputed from {j.events} event(s), {j.moved} moved")  # fmt: skip
    if not j.consistent:
        console.print(
            "[yellow]warning:[/] the stored journey events did not add up to the journey rows "
            "they replaced (events applied before migration 009 are not stored): the "
            "recomputed journeys miss them; replay the journey to restore them"
        )


@app.command()
def block(spec: str, reason: str = "") -> None:
    """Block an identifier value: it links nothing from now on."""
    settings = load_settings()
    try:
        with connection(settings, autocommit=True) as conn:
            admin.block(conn, IdentityQueries(conn, settings), spec, reason)
    except CDPError as exc:
        fail(str(exc))
    console.print(f"blocked {spec.partition(':')[0]} value (hashed); existing links stay until "
                  "`cdp identity rebuild` or a split re-evaluates them")  # fmt: skip


@app.command()
def unblock(spec: str) -> None:
    """Remove an identifier value from the blocklist."""
    settings = load_settings()
    with connection(settings, autocommit=True) as conn:
        removed = admin.unblock(conn, IdentityQueries(conn, settings), spec)
    console.print("unblocked" if removed else "was not blocked")


@app.command()
def rebuild(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="report differences only")] = True,
    json_output: JsonOpt = False,
) -> None:
    """Recompute the graph from the channel topics with the same pure code and report
    every difference to the live graph (zero expected)."""
    from cdp.identity.rebuild import rebuild_from_topics

    settings = load_settings()
    try:
        with connection(settings) as conn:
            report = rebuild_from_topics(settings, conn, progress=not json_output)
    except CDPError as exc:
        fail(str(exc))
    if not dry_run:
        fail("only --dry-run is implemented: apply differences with `cdp identity split/merge`")
    if json_output:
        print_json(report)
    else:
        console.print(f"events read: {report['events']}  identifiers: {report['identifiers']}  "
                      f"differences: {len(report['differences'])}")  # fmt: skip
        _show(report["differences"][:50], False, "")
    if report["differences"]:
        raise typer.Exit(1)


def _show(rows: list[dict[str, Any]], json_output: bool, empty: str) -> None:
    if json_output:
        print_json(rows)
        return
    if not rows:
        if empty:
            console.print(empty)
        return
    table = Table(*rows[0].keys())
    for r in rows:
        table.add_row(*(str(v) for v in r.values()))
    console.print(table)


@app.command()
def forget(
    ref: Annotated[str, typer.Argument(help="TYPE:VALUE or a customer id")],
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
    topics: Annotated[
        bool, typer.Option("--topics/--no-topics", help="also erase their Kafka records")
    ] = True,
    wait: Annotated[
        float, typer.Option("--wait", help="seconds to wait for processors to catch up")
    ] = 60.0,
    json_output: JsonOpt = False,
) -> None:
    """Erase a person from PostgreSQL, the lake and the Kafka topics and suppress their
    future events."""
    from cdp.identity.forget import forget as forget_person

    if not yes and not typer.confirm(f"erase everything about {ref}?"):
        raise typer.Exit(1)
    settings = load_settings()
    try:
        with (
            connection(settings) as conn,
            Progress(console=console, transient=True, disable=json_output) as bar,
        ):
            task = bar.add_task("searching the topics", total=None)

            def scanned(where: str, n: int) -> None:
                bar.update(task, completed=n, description=f"searching {where}")

            result = forget_person(conn, settings, ref, topics=topics, wait_s=wait,
                                   progress=scanned)  # fmt: skip
    except CDPError as exc:
        fail(str(exc), code=3)
    data: dict[str, Any] = {
        "customer_ids": result.customer_ids,
        "identifiers": result.identifiers,
        "database_rows": result.database_rows,
        "lake_rows": result.lake_rows,
        "lake_files_rewritten": result.lake_files,
        "topics": result.topics.as_dict() if result.topics is not None else None,
    }
    if json_output:
        print_json(data)
        return
    if result.topics is None:
        kafka = "Kafka topics were not searched (--no-topics)"
    else:
        t = result.topics
        kafka = (f"{t.erased} Kafka records erased ({t.scanned} searched, {t.restored}"
                 " records of others copied forward first)")  # fmt: skip
    console.print(
        f"forgot {len(result.customer_ids)} customer id(s): {result.identifiers} identifiers, "
        f"{result.database_rows} database rows, {result.lake_rows} lake rows, {kafka}; "
        "future events with these identifiers are dropped."
    )


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="identity")
