"""One self-contained HTML page: inline CSS and SVG bar charts, no scripts, no CDN."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Any

import duckdb

from cdp.analytics import analyses
from cdp.analytics.analyses import When

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:22px}h2{font-size:16px;margin:0 0 8px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:16px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:12px}
table{border-collapse:collapse;width:100%}td,th{padding:2px 6px;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}.legend span{margin-right:10px}
.muted{color:#777}
"""
_COLORS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1")


def bar_chart(items: list[tuple[str, float]], fmt: str = "{:.0f}", width: int = 420) -> str:
    """Horizontal bars, one per (label, value)."""
    if not items:
        return '<p class="muted">no data</p>'
    top = max((v for _, v in items), default=0) or 1
    row, label_w = 22, 130
    bars = []
    for i, (label, value) in enumerate(items):
        w = (width - label_w - 60) * value / top
        y = i * row
        bars.append(
            f'<text x="0" y="{y + 15}">{escape(label[:20])}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" '
            f'fill="{_COLORS[0]}"/>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + 15}">{escape(fmt.format(value))}</text>'
        )
    return (
        f'<svg width="{width}" height="{len(items) * row}" font-size="12" '
        f'xmlns="http://www.w3.org/2000/svg">{"".join(bars)}</svg>'
    )


def grouped_chart(groups: list[str], series: dict[str, list[float]], width: int = 520) -> str:
    """Vertical grouped bars: one group per label, one bar per series."""
    if not groups:
        return '<p class="muted">no data</p>'
    height, base = 200, 180
    top = max((v for vs in series.values() for v in vs), default=0) or 1
    group_w = width / len(groups)
    bar_w = group_w * 0.8 / max(len(series), 1)
    parts = []
    for g, label in enumerate(groups):
        x0 = g * group_w + group_w * 0.1
        for s, values in enumerate(series.values()):
            h = (base - 10) * values[g] / top
            parts.append(
                f'<rect x="{x0 + s * bar_w:.1f}" y="{base - h:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{_COLORS[s % len(_COLORS)]}"/>'
            )
        parts.append(f'<text x="{x0:.1f}" y="{height - 5}">{escape(label)}</text>')
    legend = "".join(
        f'<span style="color:{_COLORS[i % len(_COLORS)]}">■ {escape(name)}</span>'
        for i, name in enumerate(series)
    )
    return (
        f'<svg width="{width}" height="{height}" font-size="12" '
        f'xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg>'
        f'<div class="legend">{legend}</div>'
    )


def _table(rows: list[dict[str, Any]], keys: list[str]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f'<td class="n">{v:.3g}</td>'
        if isinstance(v, int):
            return f'<td class="n">{v}</td>'
        return f"<td>{escape('' if v is None else str(v))}</td>"

    head = "".join(f"<th>{escape(k)}</th>" for k in keys)
    body = "".join("<tr>" + "".join(cell(r.get(k)) for k in keys) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _card(title: str, body: str) -> str:
    return f'<div class="card"><h2>{escape(title)}</h2>{body}</div>'


def build_report(con: duckdb.DuckDBPyConnection, since: When = None, until: When = None) -> str:
    funnel = analyses.funnel(con, since, until)
    ropo = analyses.ropo(con, since, until)
    paths = analyses.paths(con, since, until, limit=10)
    attribution = analyses.attribution(con, since, until)
    models = ["first_touch", "last_touch", "linear", "position_based", "markov"]
    channels = attribution["channels"]
    cards = [
        _card(
            "Stage funnel",
            bar_chart([(s["stage"], float(s["customers"])) for s in funnel["overall"]])
            + _table(funnel["overall"], ["stage", "customers", "conversion"]),
        ),
        _card(
            f"ROPO and showrooming ({ropo['window_days']}-day window)",
            bar_chart(
                [
                    ("ROPO", ropo["ropo_rate"] * 100),
                    ("showrooming", ropo["showrooming_rate"] * 100),
                ],
                fmt="{:.1f}%",
            )
            + f"<p>{ropo['ropo_purchases']} of {ropo['store_purchases']} store purchases "
            f"researched online; {ropo['showrooming_purchases']} of "
            f"{ropo['online_purchases']} online purchases followed a store visit.</p>"
            + _table(ropo["by_category"], ["category", "ropo_rate", "showrooming_rate"]),
        ),
        _card(
            "Paths to a first purchase",
            bar_chart([(p["path"], float(p["customers"])) for p in paths])
            + _table(paths, ["path", "customers", "share"]),
        ),
        _card(
            f"Attribution ({attribution['purchases']} purchases)",
            grouped_chart(
                [c["channel"] for c in channels],
                {m: [float(c[m]) for c in channels] for m in models},
            )
            + _table(channels, ["channel", *models]),
        ),
    ]
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    scope = f"{since or 'beginning'} → {until or 'now'}"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>cdp analytics report</title><style>{_CSS}</style></head><body>"
        f"<h1>cdp analytics report</h1><p class='muted'>{escape(scope)} · generated {stamp}</p>"
        f'<div class="grid">{"".join(cards)}</div></body></html>'
    )
