"""A DuckDB connection with the lake and PostgreSQL as views.

PostgreSQL is attached read-only through the ``postgres_scanner`` extension loaded
from the ``duckdb-extension-postgres-scanner`` wheel (a local file: no download, no
``~/.duckdb`` install). The lake is read with a glob at query time, so files written
or compacted after :func:`connect` are seen by the next query.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
from pathlib import Path

import duckdb

from cdp.config import Settings, load_settings
from cdp.errors import ConfigError, StoreError
from cdp.lake import layout
from cdp.lake.rows import SCHEMA

_SQL_DIR = Path(str(importlib.resources.files("cdp.analytics") / "sql"))
# Views first, then the analyses that build on them (file order matters).
SQL_FILES = (
    "views.sql",
    "funnel.sql",
    "stage_durations.sql",
    "ropo.sql",
    "paths.sql",
    "attribution.sql",
    "drop_off.sql",
    "touchpoint_lift.sql",
)

_DUCK_TYPES = {
    "string": "VARCHAR",
    "timestamp[us, tz=UTC]": "TIMESTAMPTZ",
    "double": "DOUBLE",
    "bool": "BOOLEAN",
    "int32": "INTEGER",
    "int64": "BIGINT",
}

# Local stand-ins for the PostgreSQL tables, for benchmarks and lake-only use.
_PG_TABLES = """
CREATE TABLE pg.customers (customer_id VARCHAR, anchor_node VARCHAR, first_seen TIMESTAMPTZ,
    last_seen TIMESTAMPTZ, merged_into VARCHAR, created_at TIMESTAMPTZ);
CREATE TABLE pg.identities (node_id VARCHAR, id_type VARCHAR, customer_id VARCHAR,
    masked VARCHAR, first_seen TIMESTAMPTZ, last_seen TIMESTAMPTZ, first_channel VARCHAR,
    last_channel VARCHAR);
CREATE TABLE pg.customer_redirects (old_id VARCHAR, customer_id VARCHAR, merge_id BIGINT);
CREATE TABLE pg.merges (merge_id BIGINT, winner VARCHAR, loser VARCHAR, linking_node VARCHAR,
    linking_type VARCHAR, message_id VARCHAR, event_time TIMESTAMPTZ, reason VARCHAR,
    created_at TIMESTAMPTZ, split_at TIMESTAMPTZ);
CREATE TABLE pg.journey (customer_id VARCHAR, stage VARCHAR, stage_since TIMESTAMPTZ,
    stage_message_id VARCHAR, summary JSON, cart JSON, cart_value DOUBLE,
    purchase_count INTEGER, first_channel VARCHAR, first_seen TIMESTAMPTZ,
    last_event_at TIMESTAMPTZ, last_channel VARCHAR, flags VARCHAR[], updated_at TIMESTAMPTZ);
CREATE TABLE pg.transitions (transition_id BIGINT, customer_id VARCHAR, from_stage VARCHAR,
    to_stage VARCHAR, event_time TIMESTAMPTZ, message_id VARCHAR, recorded_at TIMESTAMPTZ);
"""


def postgres_extension_path() -> Path:
    """The ``postgres_scanner`` binary shipped by the wheel for this DuckDB version."""
    spec = importlib.util.find_spec("duckdb_extension_postgres_scanner")
    if spec is None or spec.origin is None:  # pragma: no cover - a pinned dependency
        raise ConfigError("duckdb-extension-postgres-scanner is not installed")
    version = duckdb.__version__
    path = Path(spec.origin).parent / "extensions" / f"v{version}"
    path = path / "postgres_scanner.duckdb_extension"
    if not path.is_file():
        raise ConfigError(f"no postgres_scanner extension for DuckDB {version} at {path}")
    return path


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def lake_relation(lake_dir: Path) -> str:
    """SQL for every lake row; an empty typed relation while the lake has no file."""
    if layout.part_files(lake_dir):
        return (
            f"SELECT * FROM read_parquet({_quote(layout.lake_glob(lake_dir))}, "
            "hive_partitioning = true, "
            "hive_types = {'event_date': DATE, 'channel': VARCHAR})"
        )
    cols = ", ".join(
        f"NULL::{_DUCK_TYPES[str(f.type)]} AS {f.name}" for f in SCHEMA if f.name != "channel"
    )
    return f"SELECT {cols}, NULL::VARCHAR AS channel, NULL::DATE AS event_date WHERE false"


def _attach_postgres(con: duckdb.DuckDBPyConnection, settings: Settings, read_only: bool) -> str:
    con.execute(f"LOAD {_quote(str(postgres_extension_path()))}")
    schema = settings.database_schema or "public"
    options = ["TYPE postgres", f"SCHEMA {_quote(schema)}"]
    if read_only:
        options.append("READ_ONLY")
    try:
        dsn = settings.dsn_as(settings.db_role_reader)
        con.execute(f"ATTACH {_quote(dsn)} AS pg ({', '.join(options)})")
    except duckdb.Error as exc:
        raise StoreError(f"cannot attach PostgreSQL: {exc}") from exc
    return f"pg.{_ident(schema)}"


def _attach_local(con: duckdb.DuckDBPyConnection) -> str:
    con.execute("ATTACH ':memory:' AS pg")
    con.execute(_PG_TABLES)
    return "pg.main"


def connect(
    settings: Settings | None = None,
    read_only: bool = True,
    postgres: bool = True,
    lake_dir: Path | None = None,
    snapshot: bool = False,
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the analytics views and macros.

    ``read_only`` attaches PostgreSQL read-only (the default: analyses never write).
    ``postgres=False`` replaces PostgreSQL by empty local tables ``pg.main.*`` that
    the caller fills (benchmarks, lake-only exploration). ``snapshot=True`` makes the
    analyses read a copy of ``touchpoints`` materialised once (de-duplication and
    re-attribution done once instead of per query; the view itself stays live): for
    sessions running several analyses, such as the report.
    """
    settings = settings or load_settings()
    lake = lake_dir if lake_dir is not None else settings.lake_path
    con = duckdb.connect(
        config={
            # Never reach the network for an extension: everything needed is local.
            "autoinstall_known_extensions": "false",
            "autoload_known_extensions": "false",
        }
    )
    try:
        con.execute("SET TimeZone = 'UTC'")
        pg = _attach_postgres(con, settings, read_only) if postgres else _attach_local(con)
        con.execute(f"CREATE OR REPLACE VIEW lake_touchpoints AS {lake_relation(lake)}")
        for name in SQL_FILES:
            con.execute((_SQL_DIR / name).read_text().replace("{pg}", pg))
        if snapshot:
            refresh_snapshot(con)
    except BaseException:
        con.close()
        raise
    return con


def refresh_snapshot(con: duckdb.DuckDBPyConnection) -> None:
    """(Re)materialise ``touchpoints`` for the analyses of a ``snapshot`` connection."""
    con.execute("CREATE OR REPLACE TEMP TABLE touchpoints_snapshot AS SELECT * FROM touchpoints")
    con.execute("CREATE OR REPLACE VIEW analysis_source AS SELECT * FROM touchpoints_snapshot")
