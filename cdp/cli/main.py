"""The ``cdp`` entry point: one Typer app, one sub-app per part of the system."""

from __future__ import annotations

import typer

from cdp.cli import admin, produce, stack

app = typer.Typer(
    name="cdp",
    help="Event-streaming customer data platform for omnichannel retail.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(stack.app, name="stack")
app.add_typer(admin.db_app, name="db")
app.add_typer(admin.topics_app, name="topics")
app.command("produce")(produce.produce_command)


def _register_optional() -> None:
    """Parts built in their own modules register their commands here."""
    import importlib

    for name in ("generate", "schemas", "worker", "identity", "journey", "dlq", "collector",
                 "sources", "analytics", "lake", "demo", "actions"):  # fmt: skip
        try:
            module = importlib.import_module(f"cdp.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"cdp.cli.{name}":
                continue
            raise
        module.register(app)


_register_optional()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
