"""The local PostgreSQL's liveness check, without a server."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from cdp.stack.postgres import LocalPostgres


def _zombie() -> subprocess.Popen[bytes]:
    """A child that has exited and is not reaped yet, like a postmaster SIGKILLed a
    moment ago whose parent (init) has not reaped it."""
    child = subprocess.Popen(["true"])
    deadline = time.monotonic() + 10
    while Path(f"/proc/{child.pid}/stat").read_text().split(") ", 1)[1][0] != "Z":
        assert time.monotonic() < deadline, "the child did not exit"
        time.sleep(0.01)
    return child


def _postgres(tmp_path: Path, pid: int) -> LocalPostgres:
    pg = LocalPostgres(tmp_path, port=1, user="cdp", password="cdp", database="cdp")
    pg.data_dir.mkdir(parents=True)
    (pg.data_dir / "postmaster.pid").write_text(f"{pid}\n{pg.data_dir}\n")
    return pg


def test_a_killed_postmaster_not_yet_reaped_is_not_running(tmp_path: Path) -> None:
    child = _zombie()
    try:
        assert not _postgres(tmp_path, child.pid).is_running()
    finally:
        child.wait()


def test_a_live_postmaster_is_running(tmp_path: Path) -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert _postgres(tmp_path, child.pid).is_running()
    finally:
        child.kill()
        child.wait()


def test_no_pid_file_is_not_running(tmp_path: Path) -> None:
    assert not LocalPostgres(tmp_path, 1, "cdp", "cdp", "cdp").is_running()
