"""Error kinds on the real server: a race in the system catalogs looks like a data
error (a unique violation) and must not be taken for one."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
from psycopg import errors

from cdp.config import Settings
from cdp.store.connect import connect, is_data_error, is_transient


def test_a_system_catalog_race_is_not_blamed_on_the_data(settings: Settings, db: Any) -> None:
    first, second = connect(settings), connect(settings)
    raised: list[psycopg.Error] = []

    def create() -> None:
        try:
            second.execute("CREATE TABLE catalog_race (v integer)")
        except psycopg.Error as exc:
            raised.append(exc)

    try:
        first.execute("CREATE TABLE catalog_race (v integer)")  # not committed yet
        thread = threading.Thread(target=create)
        thread.start()
        # the second CREATE waits on the catalog's unique index for the first to end
        deadline = time.monotonic() + 30
        while not _waiting_on_a_lock(db, "CREATE TABLE catalog_race"):
            assert time.monotonic() < deadline, "the second CREATE never waited"
            time.sleep(0.05)
        first.commit()
        thread.join(30)
    finally:
        first.close()
        second.close()
    assert len(raised) == 1
    exc = raised[0]
    assert isinstance(exc, errors.UniqueViolation)  # class 23, like a data error
    assert exc.diag.schema_name == "pg_catalog"
    assert not is_data_error(exc) and not is_transient(exc)


def _waiting_on_a_lock(db: Any, query_start: str) -> bool:
    row = db.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s",
        (query_start + "%",),
    ).fetchone()
    return bool(row[0])


def test_a_constraint_of_our_own_tables_is_the_datas(settings: Settings, db: Any) -> None:
    db.execute("CREATE TABLE unique_v (v integer PRIMARY KEY)")
    db.execute("INSERT INTO unique_v VALUES (1)")
    try:
        db.execute("INSERT INTO unique_v VALUES (1)")
    except errors.UniqueViolation as exc:
        assert exc.diag.schema_name == settings.database_schema
        assert is_data_error(exc)
    else:
        raise AssertionError("the second insert should violate the primary key")


def test_a_nul_byte_psycopg_refuses_to_send_is_the_datas(settings: Settings, db: Any) -> None:
    db.execute("CREATE TABLE texts (v text)")
    try:
        db.execute("INSERT INTO texts VALUES (%s)", ("a\x00b",))
    except psycopg.DataError as exc:
        assert exc.sqlstate is None  # refused by the client, not the server
        assert is_data_error(exc)
    else:
        raise AssertionError("psycopg should refuse a NUL byte in a text value")
