"""``cdp worker``: run the stream processors.

``cdp worker --processor NAME`` runs one processor in this process (a thin wrapper
over the Faust worker, same configuration). Without ``--processor`` every processor
runs, each as its own child process (its own consumer group), supervised here:
SIGTERM/SIGINT stop them all cleanly.

With ``CDP_METRICS_PORT`` set (default 0: off) a worker serves Prometheus metrics on
``http://CDP_METRICS_HOST:PORT/metrics``; the supervisor gives its children PORT,
PORT+1, ... in registry order, so they never share a port.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from typing import Annotated

import typer

from cdp.cli.output import console, fail
from cdp.config import Settings, load_settings


def worker_command(
    processor: Annotated[
        str | None, typer.Option("--processor", "-p", help="identity, journey or archive")
    ] = None,
    loglevel: Annotated[str, typer.Option("--loglevel", "-l")] = "info",
) -> None:
    """Run the stream processors (all of them, or one with --processor)."""
    from streams.registry import PROCESSORS

    if processor is None:
        _supervise(list(PROCESSORS), loglevel)
        return
    if processor not in PROCESSORS:
        fail(f"unknown processor {processor!r}; choose from {', '.join(PROCESSORS)}")
    _run_one(processor, loglevel)


def _run_one(name: str, loglevel: str) -> None:
    import faust

    from cdp.pipeline.lag import LagProbe
    from cdp.pipeline.metrics import WorkerMetrics
    from streams.registry import PROCESSORS, build_app

    logging.basicConfig(
        level=loglevel.upper(),
        format=f"%(asctime)s level=%(levelname)s processor={name} pid=%(process)d %(message)s",
    )
    settings = load_settings()
    _check_kafka(settings)
    serve = settings.metrics_port > 0
    sources = PROCESSORS[name].sources(settings)
    metrics = WorkerMetrics(name, lag=LagProbe(settings, name, sources) if serve else None)
    if serve:
        try:
            port = metrics.serve(settings.metrics_port, settings.metrics_host)
        except OSError as exc:
            # explicitly configured, so not serving it is an error, found at start
            fail(f"cannot serve metrics on {settings.metrics_host}:{settings.metrics_port}: {exc}")
        logging.getLogger(__name__).info(
            "processor=%s metrics on http://%s:%d/metrics", name, settings.metrics_host, port
        )
    app = build_app(settings, name, metrics=metrics)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()


def _check_kafka(settings: Settings) -> None:
    """Exit at start-up (status 78, EX_CONFIG) on invalid Kafka security settings or
    credentials the broker refuses, with the cause and the variables to check. Faust
    alone stops with a KafkaConnectionError traceback ("Unable to bootstrap"), the
    same as for a broker that is down. A broker that does not answer within the probe
    is left to Faust, as before."""
    from cdp.errors import ConfigError, KafkaError
    from cdp.kafka.probe import KafkaAuthError, probe

    log = logging.getLogger(__name__)
    try:
        settings.check_kafka_security()
        probe(settings, timeout=5.0)
    except (ConfigError, KafkaAuthError) as exc:
        log.critical("cannot start: %s", exc)
        raise typer.Exit(78) from exc  # EX_CONFIG
    except KafkaError as exc:
        log.warning("%s; starting anyway", exc)


def _child_env(name: str) -> dict[str, str] | None:
    """The environment of child ``name``: its own metrics port, if any."""
    from streams.registry import metrics_port

    port = metrics_port(load_settings(), name)
    return {**os.environ, "CDP_METRICS_PORT": str(port)} if port else None


def _supervise(names: list[str], loglevel: str) -> None:
    children = {
        name: subprocess.Popen(
            [sys.executable, "-m", "cdp.cli.main", "worker", "--processor", name, "-l", loglevel],
            env=_child_env(name),
        )
        for name in names
    }
    console.print(f"started {', '.join(f'{n} (pid {p.pid})' for n, p in children.items())}")
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for proc in children.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while any(p.poll() is None for p in children.values()):
        time.sleep(0.5)
        if not stopping:
            for name, proc in children.items():
                if proc.poll() is not None:
                    console.print(f"[red]{name} exited with {proc.returncode}; stopping the rest")
                    stop(signal.SIGTERM, None)
    codes = [p.returncode for p in children.values()]
    if not stopping and any(codes):
        os._exit(1)


def register(app: typer.Typer) -> None:
    app.command("worker")(worker_command)
