"""DuckDB analytics over the Parquet lake and PostgreSQL.

``connect()`` gives a connection with the views (``touchpoints``, ``customers``,
``identities``, ``journey``, ``transitions``) and the analysis macros;
:mod:`cdp.analytics.analyses` wraps each analysis as a function returning plain data.
"""

from cdp.analytics.analyses import (
    ANALYSES,
    attribution,
    drop_off,
    funnel,
    paths,
    ropo,
    stage_durations,
    touchpoint_lift,
)
from cdp.analytics.connect import connect

__all__ = [
    "ANALYSES",
    "attribution",
    "connect",
    "drop_off",
    "funnel",
    "paths",
    "ropo",
    "stage_durations",
    "touchpoint_lift",
]
