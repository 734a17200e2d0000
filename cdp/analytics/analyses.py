"""The packaged analyses as Python functions returning plain dicts and lists.

Each one runs the SQL macro of the same name (``cdp/analytics/sql``) on a connection
from :func:`cdp.analytics.connect`; ``since``/``until`` bound event time as
``[since, until)`` (a datetime or an ISO-8601 string; naive means UTC).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import duckdb

from cdp.analytics.markov import removal_credit

When = datetime | str | None
Row = dict[str, Any]

DEFAULT_WINDOW_DAYS = 30
DEFAULT_THRESHOLD_DAYS = 30


def _moment(value: When) -> datetime | None:
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def rows(
    con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None
) -> list[Row]:
    """Run ``sql`` and return its rows as dicts."""
    cur = con.execute(sql, params or {})
    names = [d[0] for d in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _macro(con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> list[Row]:
    args = ", ".join(f"{k} := ${k}" for k in params)
    return rows(con, f"SELECT * FROM {name}({args})", params)


def _range(since: When, until: When) -> dict[str, Any]:
    return {"since": _moment(since), "until": _moment(until)}


def funnel(con: duckdb.DuckDBPyConnection, since: When = None, until: When = None) -> Row:
    """Customers reaching each stage and conversion, overall and by first-touch channel."""
    out: Row = {"overall": [], "by_first_channel": {}}
    for r in _macro(con, "funnel", **_range(since, until)):
        step = {k: r[k] for k in ("stage", "customers", "conversion")}
        if r["segment"] == "all":
            out["overall"].append(step)
        else:
            out["by_first_channel"].setdefault(r["segment"], []).append(step)
    return out


def stage_durations(
    con: duckdb.DuckDBPyConnection, since: When = None, until: When = None
) -> list[Row]:
    """Median and p90 seconds spent in each stage (completed stays)."""
    return [
        {k: r[k] for k in ("stage", "stays", "completed", "median_s", "p90_s")}
        for r in _macro(con, "stage_durations", **_range(since, until))
    ]


def ropo(
    con: duckdb.DuckDBPyConnection,
    since: When = None,
    until: When = None,
    window_days: int = DEFAULT_WINDOW_DAYS,
) -> Row:
    """Research-online-purchase-offline and showrooming rates, overall and by category."""
    result = _macro(con, "ropo", window_days=window_days, **_range(since, until))
    total = next(r for r in result if r["is_total"])
    keys = (
        "store_purchases",
        "ropo_purchases",
        "ropo_rate",
        "online_purchases",
        "showrooming_purchases",
        "showrooming_rate",
    )
    out: Row = {"window_days": window_days, **{k: total[k] for k in keys}}
    out["by_category"] = [
        {"category": r["category"], **{k: r[k] for k in keys}} for r in result if not r["is_total"]
    ]
    return out


def paths(
    con: duckdb.DuckDBPyConnection, since: When = None, until: When = None, limit: int = 20
) -> list[Row]:
    """The most common channel sequences up to a first purchase."""
    return _macro(con, "paths", **_range(since, until))[:limit]


def attribution(
    con: duckdb.DuckDBPyConnection,
    since: When = None,
    until: When = None,
    window_days: int = DEFAULT_WINDOW_DAYS,
) -> Row:
    """Purchase credit per channel: first, last, linear, 40/20/40 and Markov removal."""
    params = {"window_days": window_days, **_range(since, until)}
    heuristic = {r["channel"]: r for r in _macro(con, "attribution", **params)}
    markov_rows = _macro(con, "markov_paths", **params)
    markov = removal_credit((r["path"], r["conversions"], r["losses"]) for r in markov_rows)
    purchases = round(sum(r["first_touch"] for r in heuristic.values()))
    channels = []
    for channel in sorted(set(heuristic) | set(markov)):
        h = heuristic.get(channel, {})
        channels.append(
            {
                "channel": channel,
                "first_touch": h.get("first_touch", 0.0),
                "last_touch": h.get("last_touch", 0.0),
                "linear": h.get("linear", 0.0),
                "position_based": h.get("position_based", 0.0),
                "markov": markov.get(channel, 0.0),
            }
        )
    return {"window_days": window_days, "purchases": purchases, "channels": channels}


def drop_off(
    con: duckdb.DuckDBPyConnection,
    since: When = None,
    until: When = None,
    threshold_days: int = DEFAULT_THRESHOLD_DAYS,
    as_of: When = None,
    top: int = 5,
) -> list[Row]:
    """Per current stage: customers silent for ``threshold_days`` and where they were last."""
    params = {"threshold_days": threshold_days, "as_of": _moment(as_of), **_range(since, until)}
    last: dict[str, list[Row]] = {}
    for r in _macro(con, "drop_off_last_touch", **params):
        last.setdefault(r["stage"], []).append(
            {k: r[k] for k in ("last_channel", "last_event", "customers")}
        )
    return [
        {
            **{k: r[k] for k in ("stage", "customers", "dropped", "drop_rate")},
            "last_touch": last.get(r["stage"], [])[:top],
        }
        for r in _macro(con, "drop_off", **params)
    ]


def touchpoint_lift(
    con: duckdb.DuckDBPyConnection,
    since: When = None,
    until: When = None,
    window_days: int = DEFAULT_WINDOW_DAYS,
) -> list[Row]:
    """Per touchpoint: purchase rate within the window of customers with vs without it."""
    return _macro(con, "touchpoint_lift", window_days=window_days, **_range(since, until))


ANALYSES = {
    "funnel": funnel,
    "stage_durations": stage_durations,
    "ropo": ropo,
    "paths": paths,
    "attribution": attribution,
    "drop_off": drop_off,
    "touchpoint_lift": touchpoint_lift,
}
