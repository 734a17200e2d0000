"""Least-privilege roles: every role against every table and operation. An operation
outside a role's policy must fail; zero unauthorised successes."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from cdp.config import Settings

READER_TABLES = {
    "customers", "identities", "customer_redirects", "merges", "conflicts", "journey",
    "transitions", "watermarks", "identity_counters",
}  # fmt: skip
OPERATIONS = ("select", "insert", "update", "delete", "ddl")


def allowed(role: str, table: str, op: str) -> bool:
    if op == "ddl":
        return False  # only the owner that runs migrations
    if role == "cdp_writer":
        return table != "schema_migrations" or op == "select"
    return op == "select" and table in READER_TABLES


def attempt(conn: psycopg.Connection[Any], table: str, op: str) -> bool:
    """Try the operation inside a rolled-back savepoint; True when it succeeded."""
    sql = {
        "select": f'SELECT * FROM "{table}" LIMIT 1',
        "insert": f'INSERT INTO "{table}" DEFAULT VALUES',
        "update": f'UPDATE "{table}" SET {{col}} = {{col}} WHERE false',
        "delete": f'DELETE FROM "{table}" WHERE false',
        "ddl": f'ALTER TABLE "{table}" ADD COLUMN intruder int',
    }[op]
    if "{col}" in sql:
        # pg_attribute, not information_schema: the latter hides what a role can't read
        col = conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
            " AND NOT attisdropped ORDER BY attnum LIMIT 1",
            (f'"{table}"',),
        ).fetchone()
        assert col is not None
        sql = sql.format(col=f'"{col[0]}"')
    try:
        with conn.transaction():
            conn.execute(sql)
            raise _Rollback
    except _Rollback:
        return True
    except psycopg.errors.InsufficientPrivilege:
        return False
    except psycopg.Error:
        # not a permission error (e.g. NOT NULL violated by DEFAULT VALUES): the
        # privilege check passed
        return True


class _Rollback(Exception):
    pass


@pytest.mark.parametrize("role", ["cdp_writer", "cdp_reader"])
def test_role_matrix(settings: Settings, db: Any, role: str) -> None:
    tables = [r[0] for r in db.execute(
        "SELECT table_name FROM information_schema.tables"
        " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'")]  # fmt: skip
    conn = psycopg.connect(
        settings.dsn(), options=f"-c search_path={settings.database_schema} -c role={role}"
    )
    unauthorised, denied_ok = [], 0
    try:
        for table in sorted(tables):
            for op in OPERATIONS:
                ok = attempt(conn, table, op)
                if ok and not allowed(role, table, op):
                    unauthorised.append((table, op))
                elif not ok and allowed(role, table, op):
                    pytest.fail(f"{role} cannot {op} {table} but needs to")
                else:
                    denied_ok += not ok
    finally:
        conn.close()
    print(
        f"\n{role}: {len(tables)} tables x {len(OPERATIONS)} operations, {denied_ok} denied"
        f" as intended, unauthorised successes: {len(unauthorised)}"
    )
    assert unauthorised == []
