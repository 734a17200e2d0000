"""PostgreSQL from the machine's server binaries, data under the project's state dir.

PostgreSQL refuses to run as root; when we are root the server runs as the
unprivileged ``postgres`` user through ``runuser``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cdp.errors import StackError
from cdp.stack.process import is_alive, tail

SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "200",
    "shared_buffers": "'512MB'",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "max_wal_size": "'2GB'",
    "checkpoint_timeout": "'15min'",
    "log_min_messages": "warning",
}


def find_bindir() -> Path:
    """Where initdb/pg_ctl live: ``pg_config --bindir``, else /usr/lib/postgresql/*/bin."""
    candidates: list[str] = []
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        candidates.append(out.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    if shutil.which("initdb"):
        candidates.append(str(Path(shutil.which("initdb") or "").resolve().parent))
    for cand in candidates:
        if cand and (Path(cand) / "initdb").exists() and (Path(cand) / "pg_ctl").exists():
            return Path(cand)
    raise StackError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found. Install them "
        "(e.g. `apt-get install postgresql-15`) or set CDP_DATABASE_URL."
    )


@dataclass
class LocalPostgres:
    state_dir: Path
    port: int
    user: str
    password: str
    database: str

    @property
    def home(self) -> Path:
        return self.state_dir / "postgres"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def log_file(self) -> Path:
        return self.home / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.database}"

    def _as_server_user(self, cmd: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return cmd
        try:
            pwd.getpwnam("postgres")
        except KeyError as exc:
            raise StackError(
                "running as root, and PostgreSQL refuses to run as root: create an "
                "unprivileged 'postgres' user (`useradd -r postgres`) or run cdp as a "
                "normal user"
            ) from exc
        runuser = shutil.which("runuser")
        if runuser is None:
            raise StackError("running as root but `runuser` is missing (util-linux)")
        return [runuser, "-u", "postgres", "--", *cmd]

    def _prepare_dirs(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            # the server user must be able to reach and own its directory
            for parent in [self.home, *self.home.parents]:
                mode = parent.stat().st_mode
                if not mode & 0o001:
                    parent.chmod(mode | 0o011)
                if parent == Path("/"):
                    break
            os.chown(self.home, entry.pw_uid, entry.pw_gid)

    def _run(self, cmd: list[str], what: str) -> None:
        proc = subprocess.run(self._as_server_user(cmd), capture_output=True, text=True)
        if proc.returncode != 0:
            raise StackError(f"{what} failed:\n{proc.stdout}{proc.stderr}\n{tail(self.log_file)}")

    def _initdb(self, bindir: Path) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        self._prepare_dirs()
        pwfile = self.home / ".pwfile"
        pwfile.write_text(self.password + "\n")
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        pwfile.chmod(0o600)
        try:
            self._run(
                [str(bindir / "initdb"), "-D", str(self.data_dir), "-U", self.user,
                 f"--pwfile={pwfile}", "--auth-local=trust", "--auth-host=scram-sha-256",
                 "-E", "UTF8", "--locale=C.UTF-8"],
                "initdb",
            )  # fmt: skip
        finally:
            pwfile.unlink(missing_ok=True)
        conf = self.data_dir / "postgresql.conf"
        extra = "".join(f"{k} = {v}\n" for k, v in SERVER_SETTINGS.items())
        with open(conf, "a") as f:
            f.write("\n# cdp local stack\n" + extra)

    def is_running(self) -> bool:
        # a postmaster killed a moment ago can still be a zombie, waiting for init to
        # reap it: taking it for running would skip the restart
        pid = self.pid()
        return pid is not None and is_alive(pid)

    def pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
        except (FileNotFoundError, ValueError, IndexError, PermissionError):
            return None

    def start(self) -> None:
        bindir = find_bindir()
        self._initdb(bindir)
        if self.is_running():
            return
        self._prepare_dirs()
        self._run(
            [str(bindir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_file),
             "-o", f"-p {self.port} -k {self.home}", "-w", "-t", "60", "start"],
            "pg_ctl start",
        )  # fmt: skip
        self._ensure_database(bindir)

    def _ensure_database(self, bindir: Path) -> None:
        psql = [str(bindir / "psql"), "-h", str(self.home), "-p", str(self.port), "-U", self.user]
        check = subprocess.run(
            self._as_server_user([*psql, "-d", "postgres", "-tAc",
                                  f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'"]),
            capture_output=True, text=True,
        )  # fmt: skip
        if check.stdout.strip() != "1":
            self._run([*psql, "-d", "postgres", "-c", f'CREATE DATABASE "{self.database}"'],
                      "create database")  # fmt: skip

    def wait_ready(self, timeout: float = 60.0) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                with psycopg.connect(self.url, connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.Error as exc:
                last = str(exc)
                time.sleep(0.3)
        raise StackError(f"PostgreSQL did not accept connections in {timeout}s ({last})")

    def stop(self, mode: str = "fast") -> None:
        if not self.is_running():
            return
        bindir = find_bindir()
        self._run([str(bindir / "pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop"],
                  "pg_ctl stop")  # fmt: skip
