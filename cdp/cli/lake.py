"""``cdp lake compact``: merge the archive's small Parquet files."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from cdp.cli.output import console, fail, print_json
from cdp.config import load_settings

app = typer.Typer(help="The Parquet lake of resolved events.", no_args_is_help=True)


@app.command("compact")
def compact_command(
    min_age: Annotated[
        float,
        typer.Option("--min-age", help="Skip files younger than this many seconds."),
    ] = 600.0,
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Merge small files per (date, channel, partition); safe to re-run after a crash."""
    from cdp.lake import compact

    lake = load_settings().lake_path
    if not lake.is_dir():
        fail(f"no lake at {lake} (set CDP_LAKE_DIR or run the archive worker first)")
    try:
        result = compact(lake, min_age_s=min_age)
    except OSError as exc:
        fail(f"compaction failed: {exc}")
    data = asdict(result)
    data["outputs"] = [str(p) for p in result.outputs]
    if json_output:
        print_json(data)
        return
    console.print(
        f"{result.files_before} → {result.files_after} files; "
        f"{result.groups_compacted} group(s) compacted, {result.rows_written} rows rewritten, "
        f"{result.covered_removed} covered file(s) removed"
    )


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="lake")
