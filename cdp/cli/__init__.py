"""The ``cdp`` command line (Typer + rich)."""
