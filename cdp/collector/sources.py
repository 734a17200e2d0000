"""Sources and their write keys (table ``sources``).

Only the SHA-256 of a write key is stored: keys are random (``secrets``, 144 bits), so a
plain hash is enough and lets a lookup be one indexed equality. :class:`SourceCache`
keeps lookups (hits and misses) for ``ttl`` seconds, which bounds how long a revoked key
keeps working.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from cdp.errors import CDPError
from cdp.events.envelope import CHANNELS

KEY_PREFIX = "wk_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")


class SourceError(CDPError):
    """Bad source name or channel, duplicate name or key, or unknown source."""


@dataclass(frozen=True)
class Source:
    name: str
    channel: str
    created_at: datetime | None = None
    revoked_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "channel": self.channel,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(18)


def add_source(
    conn: psycopg.Connection[Any], name: str, channel: str, write_key: str | None = None
) -> str:
    """Create a source; returns its write key (generated unless given). Shown once."""
    if not _NAME.match(name):
        raise SourceError(f"invalid source name {name!r} (letters, digits, _.:- ; max 100)")
    if channel not in CHANNELS:
        raise SourceError(f"unknown channel {channel!r}; one of {', '.join(CHANNELS)}")
    key = write_key if write_key is not None else generate_key()
    if len(key) < 8:
        raise SourceError("write key too short (at least 8 characters)")
    try:
        with conn.transaction():
            conn.execute(
                "INSERT INTO sources (name, channel, write_key_hash) VALUES (%s, %s, %s)",
                (name, channel, hash_key(key)),
            )
    except psycopg.errors.UniqueViolation as exc:
        what = "name" if exc.diag.constraint_name == "sources_pkey" else "write key"
        raise SourceError(f"a source with this {what} already exists ({name!r})") from exc
    return key


def list_sources(conn: psycopg.Connection[Any]) -> list[Source]:
    rows = conn.execute(
        "SELECT name, channel, created_at, revoked_at FROM sources ORDER BY name"
    ).fetchall()
    return [Source(*row) for row in rows]


def revoke_source(conn: psycopg.Connection[Any], name: str) -> None:
    """Revoke a source's key (idempotent; the row stays for the audit trail)."""
    with conn.transaction():
        row = conn.execute(
            "UPDATE sources SET revoked_at = coalesce(revoked_at, now()) WHERE name = %s"
            " RETURNING name",
            (name,),
        ).fetchone()
    if row is None:
        raise SourceError(f"no source named {name!r}")


def lookup(conn: psycopg.Connection[Any], key: str) -> Source | None:
    """The active (not revoked) source of a write key, or None."""
    row = conn.execute(
        "SELECT name, channel, created_at, revoked_at FROM sources"
        " WHERE write_key_hash = %s AND revoked_at IS NULL",
        (hash_key(key),),
    ).fetchone()
    return Source(*row) if row else None


class SourceCache:
    """Write key → source, each answer (also "unknown") kept for ``ttl`` seconds.

    ``fetch`` does the real lookup and may raise (database down): nothing is cached then.
    Keys are held hashed so the cache never keeps a plain key in memory.
    """

    def __init__(
        self,
        fetch: Callable[[str], Source | None],
        ttl: float = 2.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self.ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._entries: dict[str, tuple[float, Source | None]] = {}
        self._lock = threading.Lock()

    def peek(self, key: str) -> tuple[bool, Source | None]:
        """(found, source) without fetching: lets async callers skip a thread hop."""
        entry = self._entries.get(hash_key(key))
        if entry is not None and entry[0] > self._clock():
            return True, entry[1]
        return False, None

    def get(self, key: str) -> Source | None:
        found, source = self.peek(key)
        if found:
            return source
        source = self._fetch(key)
        with self._lock:
            if len(self._entries) >= self._max:
                self._entries.clear()  # bounded memory under a flood of random keys
            self._entries[hash_key(key)] = (self._clock() + self.ttl, source)
        return source


def authenticate(conn_or_cache: psycopg.Connection[Any] | SourceCache, key: str) -> Source | None:
    """The active source of ``key``, or None (unknown, revoked or empty key)."""
    if not key:
        return None
    if isinstance(conn_or_cache, SourceCache):
        return conn_or_cache.get(key)
    return lookup(conn_or_cache, key)
