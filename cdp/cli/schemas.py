"""``cdp schemas generate | check``."""

from __future__ import annotations

import typer

from cdp.cli.output import console, fail
from cdp.events import schema

app = typer.Typer(help="JSON Schemas of the topic contract, generated from the models.")


@app.command()
def generate() -> None:
    """Rewrite schemas/*.schema.json from the pydantic models."""
    for path in schema.write():
        console.print(f"wrote {path}")


@app.command()
def check() -> None:
    """Fail when the checked-in schemas differ from the models."""
    stale = [n for n, c in schema.rendered().items() if _read(n) != c]
    if stale:
        fail(f"schemas out of date: {', '.join(stale)} (run `make schemas`)")
    console.print("schemas up to date")


def _read(name: str) -> bytes | None:
    path = schema.SCHEMAS_DIR / name
    return path.read_bytes() if path.exists() else None


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="schemas")
