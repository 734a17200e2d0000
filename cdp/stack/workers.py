"""Stream processors as background processes of the local stack (for the demo and
for operators without a process manager): one ``cdp worker --processor NAME`` each,
with pid files and logs under the state dir. ``cdp stack down`` stops them first."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from cdp.config import Settings
from cdp.stack.process import read_pid, spawn, stop_pid


def _dir(settings: Settings) -> Path:
    path = settings.state_dir / "workers"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _env(settings: Settings, name: str) -> dict[str, str]:
    """The worker inherits the environment plus the resolved service addresses."""
    from streams.registry import metrics_port

    env = dict(os.environ)
    # several workers on this machine: each its own metrics port (or none, the default)
    env["CDP_METRICS_PORT"] = str(metrics_port(settings, name))
    env.setdefault("CDP_KAFKA_BOOTSTRAP", settings.bootstrap())
    env.setdefault("CDP_DATABASE_URL", settings.dsn())
    env.setdefault("CDP_STATE_DIR", str(settings.state_dir))
    env.setdefault("CDP_LAKE_DIR", str(settings.lake_path))
    # least privilege: the role migration 007 creates for the stream processors
    env.setdefault("CDP_DB_ROLE_WORKER", "cdp_writer")
    return env


def start_worker(settings: Settings, name: str) -> int:
    """Start ``name`` unless it already runs; returns its pid."""
    pid_file = _dir(settings) / f"{name}.pid"
    pid = read_pid(pid_file)
    if pid is not None:
        return pid
    cmd = [sys.executable, "-m", "cdp.cli.main", "worker", "--processor", name]
    log = _dir(settings) / f"{name}.log"
    pid = spawn(cmd, log, settings.state_dir, env=_env(settings, name))  # outlives this command
    pid_file.write_text(str(pid))
    return pid


def running_workers(settings: Settings) -> dict[str, int]:
    out = {}
    for pid_file in sorted(_dir(settings).glob("*.pid")):
        pid = read_pid(pid_file)
        if pid is not None:
            out[pid_file.stem] = pid
    return out


def stop_workers(settings: Settings) -> list[str]:
    stopped = []
    for pid_file in sorted(_dir(settings).glob("*.pid")):
        pid = read_pid(pid_file)
        if pid is not None:
            stop_pid(pid, timeout=30)
            stopped.append(pid_file.stem)
        pid_file.unlink(missing_ok=True)
    return stopped
