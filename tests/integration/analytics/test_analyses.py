"""Every analysis against the independent Python model of tests/.../dataset.py."""

from __future__ import annotations

import math
from typing import Any

import duckdb
import orjson

from cdp.analytics import analyses, connect
from cdp.config import Settings
from tests.integration.analytics import dataset as ds


def _close(a: Any, b: Any) -> bool:
    """Deep equality with a float tolerance."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, abs_tol=1e-9)
    return bool(a == b)


def test_touchpoints_map_pre_merge_events_to_the_winner(con: duckdb.DuckDBPyConnection) -> None:
    got = con.sql(
        "SELECT message_id, customer_id, archived_customer_id FROM touchpoints ORDER BY 1"
    ).fetchall()
    assert [r[0] for r in got] == sorted(e.mid for e in ds.EVENTS)  # de-duplicated
    by_id = {mid: (cid, archived) for mid, cid, archived in got}
    assert by_id["m01"] == ("cus_a", "cus_b")
    assert by_id["m02"] == ("cus_a", "cus_b")
    assert by_id["m04"] == ("cus_a", "cus_a")
    assert con.sql("SELECT count(*) FROM customers WHERE NOT is_current").fetchone() == (1,)
    assert con.sql("SELECT customer_id, masked FROM identities").fetchall() == [
        ("cus_a", "c***@example.com")
    ]
    assert con.sql("SELECT count(*) FROM journey").fetchone() == (len(ds.JOURNEY),)
    assert con.sql("SELECT count(DISTINCT customer_id) FROM transitions").fetchone() == (6,)


def test_lake_holds_no_pii(con: duckdb.DuckDBPyConnection) -> None:
    dump = orjson.dumps(con.sql("SELECT * FROM touchpoints").fetchall(), default=str).decode()
    assert "@example.com" not in dump
    assert "10.0.0.1" not in dump
    assert "user-cus" not in dump


def test_funnel(con: duckdb.DuckDBPyConnection) -> None:
    assert _close(analyses.funnel(con), ds.funnel())
    since, until = ds.at(2, 0), ds.at(30, 0)
    assert _close(analyses.funnel(con, since, until), ds.funnel(since, until))


def test_stage_durations(con: duckdb.DuckDBPyConnection) -> None:
    assert _close(analyses.stage_durations(con), ds.stage_durations())


def test_ropo(con: duckdb.DuckDBPyConnection) -> None:
    got = analyses.ropo(con)
    assert _close(got, ds.ropo())
    # hand-checked: cus_a (pre-merge web research) and cus_g are ROPO; cus_f's
    # research was opted out; cus_c's research is 69 days old.
    assert (got["store_purchases"], got["ropo_purchases"]) == (4, 2)
    assert (got["online_purchases"], got["showrooming_purchases"]) == (2, 1)
    assert _close(analyses.ropo(con, window_days=90), ds.ropo(90))


def test_paths(con: duckdb.DuckDBPyConnection) -> None:
    assert _close(analyses.paths(con), ds.paths())


def test_attribution(con: duckdb.DuckDBPyConnection) -> None:
    got = analyses.attribution(con)
    assert _close(got, ds.attribution())
    for model in ("first_touch", "last_touch", "linear", "position_based", "markov"):
        total = sum(c[model] for c in got["channels"])
        assert math.isclose(total, got["purchases"]), model


def test_drop_off(con: duckdb.DuckDBPyConnection) -> None:
    assert _close(analyses.drop_off(con), ds.drop_off())


def test_touchpoint_lift(con: duckdb.DuckDBPyConnection) -> None:
    got = {r.pop("event"): r for r in analyses.touchpoint_lift(con)}
    assert _close(got, ds.touchpoint_lift())


def test_empty_lake(settings: Settings) -> None:
    with connect(settings) as empty:
        assert empty.sql("SELECT count(*) FROM touchpoints").fetchone() == (0,)
        assert analyses.ropo(empty)["ropo_rate"] == 0.0
        assert analyses.paths(empty) == []
        assert analyses.attribution(empty)["channels"] == []
