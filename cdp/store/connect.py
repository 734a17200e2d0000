"""Connections to PostgreSQL, with psycopg errors mapped onto :mod:`cdp.errors`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeGuard

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


# SQLSTATE classes a record's own content can cause, where retrying cannot help and
# bisecting a batch finds the record: 21 cardinality violation, 22 data exception,
# 23 integrity constraint violation, 54 program limit exceeded (a value too large to
# index, a statement too complex for one batch).
_DATA_CLASSES = frozenset({"21", "22", "23", "54"})


def is_transient(exc: BaseException) -> bool:
    """The connection went away, the server is short of something or asked to retry.
    (psycopg files class 54 under OperationalError too; it is the data's.)"""
    if is_data_error(exc):
        return False
    return isinstance(exc, (*_TRANSIENT, TransientStoreError))


def is_data_error(exc: BaseException) -> TypeGuard[psycopg.Error]:
    """A psycopg error the data being written caused (the record at fault can be set
    aside), as opposed to one of the deployment (a missing table or grant), the server
    or this client, which every record would hit alike."""
    if not isinstance(exc, psycopg.Error):
        return False
    state = exc.sqlstate
    if state is None:  # raised by psycopg itself: a NUL byte in a text value, say
        return isinstance(exc, (psycopg.DataError, psycopg.IntegrityError))
    if state[:2] not in _DATA_CLASSES:
        return False
    # a violated system catalog constraint is the server's (say, two sessions
    # creating the same object), not the data's
    return exc.diag.schema_name != "pg_catalog"


def map_error(exc: psycopg.Error) -> StoreError:
    if is_transient(exc):
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
