"""Connections to PostgreSQL, with psycopg errors mapped onto :mod:`cdp.errors`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from cdp.config import Settings, load_settings
from cdp.errors import StoreError, TransientStoreError

# Errors worth retrying: the connection went away or the server asked us to retry.
_TRANSIENT = (
    psycopg.OperationalError,
    psycopg.errors.SerializationFailure,
    psycopg.errors.DeadlockDetected,
    psycopg.errors.AdminShutdown,
    psycopg.errors.CannotConnectNow,
)


def map_error(exc: psycopg.Error) -> StoreError:
    if isinstance(exc, _TRANSIENT):
        return TransientStoreError(str(exc))
    return StoreError(str(exc))


def session_options(settings: Settings, role: str | None = None) -> dict[str, str]:
    """libpq ``options`` for the configured schema and, when given, ``role``."""
    options = []
    if settings.database_schema:
        options.append(f"-c search_path={settings.database_schema}")
    if role:
        options.append(f"-c role={role}")
    return {"options": " ".join(options)} if options else {}


def connect(
    settings: Settings | None = None, role: str | None = None, **kwargs: Any
) -> psycopg.Connection[Any]:
    """A connection on the configured schema, as ``role`` when given."""
    settings = settings or load_settings()
    for key, value in session_options(settings, role).items():
        kwargs.setdefault(key, value)
    try:
        return psycopg.connect(settings.dsn(), connect_timeout=10, **kwargs)
    except psycopg.Error as exc:
        raise map_error(exc) from exc


@contextmanager
def connection(
    settings: Settings | None = None, **kwargs: Any
) -> Iterator[psycopg.Connection[Any]]:
    conn = connect(settings, **kwargs)
    try:
        yield conn
    finally:
        conn.close()
