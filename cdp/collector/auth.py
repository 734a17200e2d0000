"""Write-key extraction and lookup for the app: Basic auth (key as user name, empty
password, as every Segment/RudderStack SDK sends it) or ``writeKey`` in the body."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from psycopg_pool import ConnectionPool
from starlette.concurrency import run_in_threadpool

from cdp.collector.sources import Source, SourceCache, lookup
from cdp.config import Settings
from cdp.store.connect import session_options


class AuthUnavailable(Exception):
    """The source table could not be read (database down): answer 503, not 401."""


def basic_key(header: str | None) -> str | None:
    """The user name of an ``Authorization: Basic`` header, or None."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, _, _password = decoded.partition(":")
    return user or None


def body_key(body: Any) -> str | None:
    key = body.get("writeKey") if isinstance(body, dict) else None
    return key if isinstance(key, str) and key else None


class Directory:
    """Sources looked up through a small connection pool and a :class:`SourceCache`."""

    def __init__(self, settings: Settings, ttl_s: float) -> None:
        # the collector runs as the worker role (CDP_DB_ROLE_WORKER) when configured
        kwargs: dict[str, Any] = {"autocommit": True, "connect_timeout": 5,
                                  **session_options(settings, settings.db_role_worker)}  # fmt: skip
        self.pool = ConnectionPool(
            settings.dsn(), min_size=1, max_size=4, kwargs=kwargs, open=False, timeout=5.0,
            name="collector-sources",
        )  # fmt: skip
        self.cache = SourceCache(self._fetch, ttl=ttl_s)

    def _fetch(self, key: str) -> Source | None:
        with self.pool.connection() as conn:
            return lookup(conn, key)

    def open(self) -> None:
        self.pool.open(wait=False)  # start even if the database is briefly away

    def close(self) -> None:
        self.pool.close()

    async def authenticate(self, key: str | None) -> Source | None:
        if not key:
            return None
        found, source = self.cache.peek(key)  # hot path: no thread hop
        if found:
            return source
        try:
            return await run_in_threadpool(self.cache.get, key)
        except Exception as exc:  # psycopg / pool errors: we cannot tell, so no 401
            raise AuthUnavailable(str(exc)) from exc

    def db_ok(self) -> bool:
        try:
            with self.pool.connection(timeout=2.0) as conn:
                conn.execute("SELECT 1")
        except Exception:
            return False
        return True
