"""``cdp dlq list | replay``: see and re-publish dead-lettered input."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer
from rich.progress import track
from rich.table import Table

from cdp.cli.output import console, fail, print_json
from cdp.config import load_settings
from cdp.errors import CDPError
from cdp.kafka.reader import read_topic
from cdp.pipeline.deadletter import decode
from cdp.pipeline.publish import Output, Publisher

app = typer.Typer(help="The dead-letter topic: invalid input with its reason.")


def _entries(since: datetime | None, reason: str | None) -> list[dict[str, Any]]:
    settings = load_settings()
    out = []
    for msg in read_topic(settings, settings.topic("deadletter")):
        doc = decode(msg.value())
        doc["dlq_offset"] = msg.offset()
        if reason and doc["reason"] != reason:
            continue
        if since and datetime.fromisoformat(doc["time"]) < since:
            continue
        out.append(doc)
    return out


@app.command("list")
def list_(
    since: Annotated[
        datetime | None, typer.Option(help="only entries dead-lettered after this time")
    ] = None,
    reason: Annotated[str | None, typer.Option(help="only this reason code")] = None,
    limit: int = 100,
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Dead-lettered records with their source and reason (newest last)."""
    try:
        entries = _entries(since, reason)
    except CDPError as exc:
        fail(str(exc))
    shown = entries[-limit:]
    if json_output:
        print_json([
            {k: v for k, v in e.items() if k not in ("raw", "key")}
            | {"raw_preview": e["raw"][:200].decode("utf-8", "replace")}
            for e in shown
        ])  # fmt: skip
        return
    table = Table("time", "reason", "source", "detail", "raw")
    for e in shown:
        src = e["source"]
        table.add_row(
            e["time"][:19], e["reason"], f"{src['topic']}[{src['partition']}]@{src['offset']}",
            e["detail"][:60], e["raw"][:40].decode("utf-8", "replace"),
        )  # fmt: skip
    console.print(table)
    console.print(f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}")


@app.command()
def replay(
    since: Annotated[datetime | None, typer.Option()] = None,
    reason: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Re-publish entries to their source topic, unchanged. Processing is idempotent by
    messageId, so replaying twice applies an event once. Entries whose bytes were cut
    (records larger than a dead letter carries) are left out and counted."""
    settings = load_settings()
    try:
        entries = _entries(since, reason)
        whole = [e for e in entries if not e["truncated"]]
        outputs = [Output(e["source"]["topic"], e["key"], e["raw"]) for e in whole]
        publisher = Publisher(settings, "cdp-dlq-replay")
        for out in track(outputs, description="replaying", console=console, transient=True):
            publisher.publish([out])
    except CDPError as exc:
        fail(str(exc))
    console.print(f"replayed {len(outputs)} record(s)")
    if cut := len(entries) - len(whole):
        console.print(
            f"left out {cut} cut record(s): a dead letter keeps their first bytes only;"
            " the originals are at their source topic, partition and offset (`cdp dlq list`)"
        )


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="dlq")
