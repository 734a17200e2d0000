"""``cdp analytics …``: SQL over the lake + PostgreSQL, the packaged analyses, a report."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cdp.cli.output import fail, print_json
from cdp.errors import CDPError

app = typer.Typer(help="DuckDB analytics over the Parquet lake and PostgreSQL.")

Since = Annotated[str | None, typer.Option("--since", help="ISO date/time, inclusive.")]
Until = Annotated[str | None, typer.Option("--until", help="ISO date/time, exclusive.")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
Window = Annotated[int, typer.Option("--window-days", min=1, help="Look-back window.")]


@contextmanager
def _connection(snapshot: bool = True) -> Iterator[Any]:
    import duckdb

    from cdp.analytics import connect
    from cdp.config import load_settings

    try:
        con = connect(load_settings(), snapshot=snapshot)
    except (CDPError, duckdb.Error, OSError) as exc:
        fail(f"cannot open the analytics connection: {exc}")
    try:
        yield con
    except duckdb.Error as exc:
        fail(str(exc).splitlines()[0])
    except ValueError as exc:  # a bad --since/--until
        fail(str(exc))
    finally:
        con.close()


def _table(rows: list[dict[str, Any]], title: str | None = None) -> None:
    table = Table(title=title)
    for name in rows[0] if rows else []:
        table.add_column(name)
    for row in rows:
        table.add_row(*(_fmt(v) for v in row.values()))
    Console().print(table if rows else "(no rows)")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def _show(data: Any, json_output: bool, title: str) -> None:
    if json_output:
        print_json(data)
    elif isinstance(data, list):
        _table(data, title)
    else:
        scalars = {k: v for k, v in data.items() if not isinstance(v, list | dict)}
        _table([scalars], title)
        for key, value in data.items():
            if isinstance(value, list):
                _table(value, key)
            elif isinstance(value, dict):
                for sub, sub_rows in value.items():
                    _table(sub_rows, f"{key}: {sub}")


def _run(name: str, fn: Callable[..., Any], json_output: bool, **kwargs: Any) -> None:
    with _connection() as con:
        data = fn(con, **kwargs)
    _show(data, json_output, name)


def _query(con: Any, sql: str, json_output: bool) -> None:
    from cdp.analytics.analyses import rows

    result = rows(con, sql)
    if json_output:
        print_json(result)
    else:
        _table(result)


@app.command("sql")
def sql_command(
    command: Annotated[str | None, typer.Option("-c", "--command", help="SQL to run.")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="A file of SQL.")] = None,
    json_output: Json = False,
) -> None:
    """Run SQL (-c, --file) or read statements from stdin, one per line (a REPL)."""
    import duckdb

    with _connection(snapshot=False) as con:
        if command is not None or file is not None:
            sql = command if command is not None else _read(file)
            _query(con, sql, json_output)
            return
        interactive = sys.stdin.isatty()
        while True:
            if interactive:
                sys.stderr.write("cdp> ")
                sys.stderr.flush()
            line = sys.stdin.readline()
            if not line:
                break
            line = line.strip()
            if line in ("", "\\q", "exit", "quit"):
                if line:
                    break
                continue
            try:
                _query(con, line, json_output)
            except duckdb.Error as exc:  # keep the REPL alive
                Console(stderr=True).print(f"[red]error:[/] {str(exc).splitlines()[0]}")


def _read(file: Path | None) -> str:
    assert file is not None
    try:
        return file.read_text()
    except OSError as exc:
        fail(f"cannot read {file}: {exc}")


@app.command("funnel")
def funnel_command(since: Since = None, until: Until = None, json_output: Json = False) -> None:
    """Customers reaching each journey stage and conversion, by first-touch channel."""
    from cdp.analytics import funnel

    _run("funnel", funnel, json_output, since=since, until=until)


@app.command("stage-durations")
def stage_durations_command(
    since: Since = None, until: Until = None, json_output: Json = False
) -> None:
    """Median and p90 time spent in each stage."""
    from cdp.analytics import stage_durations

    _run("stage durations", stage_durations, json_output, since=since, until=until)


@app.command("ropo")
def ropo_command(
    since: Since = None, until: Until = None, window_days: Window = 30, json_output: Json = False
) -> None:
    """Research online, purchase offline (and showrooming) rates."""
    from cdp.analytics import ropo

    _run("ropo", ropo, json_output, since=since, until=until, window_days=window_days)


@app.command("paths")
def paths_command(
    since: Since = None,
    until: Until = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 20,
    json_output: Json = False,
) -> None:
    """The most common channel sequences up to a first purchase."""
    from cdp.analytics import paths

    _run("paths", paths, json_output, since=since, until=until, limit=limit)


@app.command("attribution")
def attribution_command(
    since: Since = None, until: Until = None, window_days: Window = 30, json_output: Json = False
) -> None:
    """Purchase credit per channel under five attribution models."""
    from cdp.analytics import attribution

    _run("attribution", attribution, json_output, since=since, until=until, window_days=window_days)


@app.command("drop-off")
def drop_off_command(
    since: Since = None,
    until: Until = None,
    threshold_days: Annotated[int, typer.Option("--threshold-days", min=1)] = 30,
    json_output: Json = False,
) -> None:
    """Per stage: customers gone silent and their last touchpoint."""
    from cdp.analytics import drop_off

    _run("drop-off", drop_off, json_output, since=since, until=until, threshold_days=threshold_days)


@app.command("touchpoint-lift")
def touchpoint_lift_command(
    since: Since = None, until: Until = None, window_days: Window = 30, json_output: Json = False
) -> None:
    """Purchase rate with vs without each touchpoint."""
    from cdp.analytics import touchpoint_lift

    _run("touchpoint lift", touchpoint_lift, json_output, since=since, until=until,
         window_days=window_days)  # fmt: skip


@app.command("report")
def report_command(
    out: Annotated[Path, typer.Option("--out", help="The HTML file to write.")] = Path(
        "report.html"
    ),
    since: Since = None,
    until: Until = None,
) -> None:
    """Write one self-contained HTML page with the main analyses."""
    from cdp.analytics.report import build_report

    with _connection() as con:
        html = build_report(con, since=since, until=until)
    try:
        out.write_text(html)
    except OSError as exc:
        fail(f"cannot write {out}: {exc}")
    Console(stderr=True).print(f"wrote {out}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="analytics")
