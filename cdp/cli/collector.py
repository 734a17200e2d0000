"""``cdp collector``: serve the Segment-compatible HTTP collector with uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer


def collector_command(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8088,
    workers: Annotated[int, typer.Option(min=1, help="uvicorn worker processes")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
) -> None:
    """Serve POST /v1/{track,identify,page,screen,alias,group,batch}, /health, /metrics."""
    import uvicorn

    # An import string + factory: each worker process builds its own app (producer,
    # pool, metrics), from CDP_* settings.
    uvicorn.run(
        "cdp.collector.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        proxy_headers=True,
        server_header=False,
    )


def register(app: typer.Typer) -> None:
    app.command("collector")(collector_command)
