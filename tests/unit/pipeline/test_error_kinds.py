"""Which database errors the batch runner retries, and which it blames on the data
(bisect and dead-letter): a wrong call empties a partition into the dead-letter topic
or blocks it on a poison record."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors

from cdp.errors import StoreError, TransientStoreError
from cdp.store.connect import is_data_error, is_transient


@pytest.mark.parametrize(
    "exc",
    [
        errors.InvalidTextRepresentation(),  # 22P02: "boom" into an integer column
        errors.UntranslatableCharacter(),  # 22P05: a NUL byte in a text value
        errors.NumericValueOutOfRange(),
        errors.UniqueViolation(),
        errors.CheckViolation(),
        errors.CardinalityViolation(),  # ON CONFLICT DO UPDATE hitting a row twice
        errors.ProgramLimitExceeded(),  # a value too large to index
        psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes"),
    ],
)
def test_errors_of_the_data_are_the_datas(exc: psycopg.Error) -> None:
    assert is_data_error(exc) and not is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        errors.UndefinedTable(),  # workers upgraded before `cdp migrate`
        errors.UndefinedColumn(),
        errors.InsufficientPrivilege(),  # a revoked grant
        errors.InFailedSqlTransaction(),
        errors.InternalError_(),
        psycopg.InterfaceError("the cursor doesn't have a result"),
        psycopg.ProgrammingError("client-side misuse"),
    ],
)
def test_errors_every_record_would_hit_are_not_the_datas(exc: psycopg.Error) -> None:
    assert not is_data_error(exc) and not is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        psycopg.OperationalError("server closed the connection unexpectedly"),
        errors.AdminShutdown(),
        errors.CrashShutdown(),
        errors.CannotConnectNow(),
        errors.SerializationFailure(),
        errors.DeadlockDetected(),
        errors.TooManyConnections(),
        TransientStoreError("connection refused"),
    ],
)
def test_transient_errors_are_retried(exc: BaseException) -> None:
    assert is_transient(exc)
    if isinstance(exc, psycopg.Error):
        assert not is_data_error(exc)


def test_a_non_transient_store_error_is_not_transient() -> None:
    assert not is_transient(StoreError("role does not exist"))
