"""``cdp produce FILE|-``: send JSONL events with the producer SDK."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.progress import Progress

from cdp.cli.output import console, fail, print_json
from cdp.config import load_settings
from cdp.errors import CDPError, ValidationError
from cdp.kafka.producer import DeliveryError, Producer


def produce_command(
    path: Annotated[str, typer.Argument(help="JSONL file, or - for stdin")],
    source: Annotated[str, typer.Option(help="value of the `source` header")] = "cli",
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Validate and send one event per line; invalid lines are reported, not sent."""
    stream = sys.stdin.buffer if path == "-" else Path(path).open("rb")  # noqa: SIM115
    total = None if path == "-" else Path(path).stat().st_size
    sent, invalid = 0, []
    try:
        with (
            Producer(load_settings(), source=source) as producer,
            Progress(console=console, transient=True) as progress,
        ):
            task = progress.add_task("producing", total=total)
            for lineno, line in enumerate(stream, 1):
                progress.advance(task, len(line))
                if not line.strip():
                    continue
                try:
                    producer.send(orjson.loads(line))
                    sent += 1
                except orjson.JSONDecodeError as exc:
                    invalid.append({"line": lineno, "reason": "invalid_json", "detail": str(exc)})
                except ValidationError as exc:
                    invalid.append({"line": lineno, "reason": exc.reason, "detail": exc.detail})
    except DeliveryError as exc:
        fail(str(exc))
    except CDPError as exc:
        fail(str(exc))
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    summary = {"sent": sent, "invalid": len(invalid), "errors": invalid[:20]}
    if json_output:
        print_json(summary)
    else:
        console.print(f"sent {sent} event(s), {len(invalid)} invalid")
        for err in invalid[:20]:
            console.print(f"  line {err['line']}: {err['reason']} {err['detail']}")
    if invalid:
        raise typer.Exit(2)
