"""A small hand-built omnichannel dataset and an independent Python model of it.

Every expected value in the analytics tests is computed here with plain loops over the
same events, following docs/analytics.md, never with the SQL under test.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

T0 = datetime(2026, 3, 1, tzinfo=UTC)
STAGES = ["awareness", "consideration", "decision", "service", "loyalty"]
RESEARCH = {"Product Viewed", "Products Searched", "Product Added"}
REDIRECTS = {"cus_b": "cus_a"}  # cus_b was merged into cus_a after its events were archived


def at(day: float, hour: float = 10) -> datetime:
    return T0 + timedelta(days=day, hours=hour)


@dataclass(frozen=True)
class Ev:
    mid: str
    cid: str  # as archived (before later merges)
    ts: datetime
    channel: str
    event: str | None
    category: str | None = None
    type: str = "track"
    consent: bool | None = None

    @property
    def customer(self) -> str:
        return REDIRECTS.get(self.cid, self.cid)

    @property
    def label(self) -> str:
        return self.event or self.type


EVENTS = [
    Ev("m01", "cus_b", at(1), "web", "Product Viewed", "shoes"),
    Ev("m02", "cus_b", at(2), "web", "Products Searched"),
    Ev("m03", "cus_a", at(3), "store", "Store Visited"),
    Ev("m04", "cus_a", at(5), "store", "Order Completed", "shoes"),
    Ev("m05", "cus_c", at(1), "app", "Product Added", "bags"),
    Ev("m06", "cus_c", at(10), "newsletter", "Email Opened"),
    Ev("m07", "cus_c", at(12), "web", "Order Completed", "bags"),
    Ev("m08", "cus_c", at(20), "store", "Store Visited"),
    Ev("m09", "cus_c", at(70), "store", "Order Completed", "bags"),
    Ev("m10", "cus_d", at(2), "store", "Store Visited"),
    Ev("m11", "cus_d", at(4), "web", "Product Viewed", "shoes"),
    Ev("m12", "cus_d", at(4, 12), "app", "Product Viewed", "shoes"),
    Ev("m13", "cus_d", at(6), "web", "Order Completed", "shoes"),
    Ev("m14", "cus_e", at(1), "web", None, type="page"),
    Ev("m15", "cus_e", at(8), "web", "Product Viewed", "bags"),
    Ev("m16", "cus_f", at(3), "loyalty", "Loyalty Card Registered"),
    Ev("m17", "cus_f", at(4), "web", "Product Viewed", "shoes", consent=False),
    Ev("m18", "cus_f", at(5), "store", "Order Completed", "shoes", consent=True),
    Ev("m19", "cus_g", at(40), "app", "Product Viewed", "bags"),
    Ev("m20", "cus_g", at(41), "app", "Product Added", "bags"),
    Ev("m21", "cus_g", at(41, 11), "store", "Order Completed", "bags"),
    Ev("m22", "cus_g", at(80), "service", "Support Ticket Opened"),
]

# (transition_id, customer_id, from_stage, to_stage, event_time)
TRANSITIONS = [
    (1, "cus_b", None, "awareness", at(1)),
    (2, "cus_b", "awareness", "consideration", at(2)),
    (3, "cus_a", None, "awareness", at(3)),
    (4, "cus_a", "awareness", "decision", at(5)),
    (5, "cus_c", None, "awareness", at(1)),
    (6, "cus_c", "awareness", "consideration", at(1, 11)),
    (7, "cus_c", "consideration", "decision", at(12)),
    (8, "cus_c", "decision", "service", at(20)),
    (9, "cus_c", "service", "loyalty", at(70)),
    (10, "cus_d", None, "awareness", at(2)),
    (11, "cus_d", "awareness", "consideration", at(4)),
    (12, "cus_d", "consideration", "decision", at(6)),
    (13, "cus_e", None, "awareness", at(1)),
    (14, "cus_e", "awareness", "consideration", at(8)),
    (15, "cus_f", None, "awareness", at(3)),
    (16, "cus_f", "awareness", "decision", at(5)),
    (17, "cus_g", None, "consideration", at(40)),
    (18, "cus_g", "consideration", "decision", at(41, 11)),
    (19, "cus_g", "decision", "service", at(80)),
]

# (customer_id, stage, stage_since)
JOURNEY = [
    ("cus_a", "decision", at(5)),
    ("cus_b", "consideration", at(2)),  # merged away: not current
    ("cus_c", "loyalty", at(70)),
    ("cus_d", "decision", at(6)),
    ("cus_e", "consideration", at(8)),
    ("cus_f", "decision", at(5)),
    ("cus_g", "service", at(80)),
]


def resolved(ev: Ev) -> dict[str, Any]:
    """The resolved-topic record the identity processor would have produced."""
    event: dict[str, Any] = {
        "messageId": ev.mid,
        "type": ev.type,
        "channel": ev.channel,
        "timestamp": ev.ts.isoformat(),
        "userId": f"user-{ev.cid}",
        "identifiers": {"email": f"{ev.cid}@example.com"},
        "traits": {"email": f"{ev.cid}@example.com"},
        "properties": {"email": "leak@example.com"},
        "context": {"ip": "10.0.0.1"},
    }
    if ev.event:
        event["event"] = ev.event
    if ev.category:
        event["properties"]["category"] = ev.category
    if ev.event == "Order Completed":
        event["properties"].update(order_id=f"o-{ev.mid}", revenue=50.0)
    if ev.consent is not None:
        event["context"]["consent"] = {"analytics": ev.consent}
    return {"kind": "event", "customer_id": ev.cid, "event": event}


# --------------------------------------------------------------- the model ---------


def in_range(ts: datetime, since: datetime | None, until: datetime | None) -> bool:
    return (since is None or ts >= since) and (until is None or ts < until)


def analysed() -> list[Ev]:
    return sorted((e for e in EVENTS if e.consent is not False), key=lambda e: (e.ts, e.mid))


def first_channel() -> dict[str, str]:
    out: dict[str, str] = {}
    for e in analysed():
        out.setdefault(e.customer, e.channel)
    return out


def funnel(since: datetime | None = None, until: datetime | None = None) -> dict[str, Any]:
    reach: dict[str, int] = {}
    stage_rows = [(c, s, t) for _, c, _, s, t in TRANSITIONS] + JOURNEY
    for cid, stage, ts in stage_rows:
        if in_range(ts, since, until) and stage in STAGES:
            canon = REDIRECTS.get(cid, cid)
            reach[canon] = max(reach.get(canon, 0), STAGES.index(stage) + 1)
    firsts = first_channel()

    def steps(members: list[str]) -> list[dict[str, Any]]:
        counts = [sum(1 for c in members if reach[c] >= i + 1) for i in range(len(STAGES))]
        return [
            {
                "stage": s,
                "customers": counts[i],
                "conversion": None if i == 0 or not counts[i - 1] else counts[i] / counts[i - 1],
            }
            for i, s in enumerate(STAGES)
        ]

    by: dict[str, list[str]] = {}
    for c in reach:
        by.setdefault(firsts.get(c, "unknown"), []).append(c)
    return {
        "overall": steps(list(reach)),
        "by_first_channel": {ch: steps(members) for ch, members in sorted(by.items())},
    }


def quantile(values: list[float], q: float) -> float:
    v = sorted(values)
    pos = (len(v) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def stage_durations() -> list[dict[str, Any]]:
    per: dict[str, list[tuple[datetime, int, str]]] = {}
    for tid, cid, _, to, ts in TRANSITIONS:
        per.setdefault(REDIRECTS.get(cid, cid), []).append((ts, tid, to))
    stays: dict[str, list[float | None]] = {}
    for rows in per.values():
        rows.sort()
        for i, (ts, _, stage) in enumerate(rows):
            nxt = rows[i + 1][0] if i + 1 < len(rows) else None
            stays.setdefault(stage, []).append((nxt - ts).total_seconds() if nxt else None)
    out = []
    for stage in sorted(stays, key=STAGES.index):
        done = [s for s in stays[stage] if s is not None]
        out.append(
            {
                "stage": stage,
                "stays": len(stays[stage]),
                "completed": len(done),
                "median_s": quantile(done, 0.5) if done else None,
                "p90_s": quantile(done, 0.9) if done else None,
            }
        )
    return out


def _before(e: Ev, window: timedelta, pred: Any) -> bool:
    return any(
        r.customer == e.customer and e.ts - window <= r.ts < e.ts and pred(r) for r in analysed()
    )


def ropo(window_days: int = 30) -> dict[str, Any]:
    window = timedelta(days=window_days)
    store, online = [], []
    for p in analysed():
        if p.event != "Order Completed":
            continue
        if p.channel == "store":
            hit = _before(p, window, lambda r: r.channel in ("web", "app") and r.event in RESEARCH)
            store.append((p.category, hit))
        elif p.channel in ("web", "app"):
            online.append((p.category, _before(p, window, lambda r: r.event == "Store Visited")))

    def block(s: list[tuple[Any, bool]], o: list[tuple[Any, bool]]) -> dict[str, Any]:
        return {
            "store_purchases": len(s),
            "ropo_purchases": sum(h for _, h in s),
            "ropo_rate": sum(h for _, h in s) / len(s) if s else 0.0,
            "online_purchases": len(o),
            "showrooming_purchases": sum(h for _, h in o),
            "showrooming_rate": sum(h for _, h in o) / len(o) if o else 0.0,
        }

    cats = sorted({c for c, _ in store + online if c is not None})
    return {
        "window_days": window_days,
        **block(store, online),
        "by_category": [
            {
                "category": c,
                **block([x for x in store if x[0] == c], [x for x in online if x[0] == c]),
            }
            for c in cats
        ],
    }


def paths() -> list[dict[str, Any]]:
    seqs: dict[str, list[str]] = {}
    done: set[str] = set()
    for e in analysed():
        if e.customer in done:
            continue
        seq = seqs.setdefault(e.customer, [])
        if not seq or seq[-1] != e.channel:
            seq.append(e.channel)
        if e.event == "Order Completed":
            done.add(e.customer)
    counts: dict[str, int] = {}
    for c in done:
        key = " > ".join(seqs[c])
        counts[key] = counts.get(key, 0) + 1
    total = sum(counts.values())
    return [
        {"path": p, "customers": n, "share": n / total}
        for p, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


def purchase_touches(window_days: int = 30) -> list[list[str]]:
    window = timedelta(days=window_days)
    out = []
    for p in analysed():
        if p.event != "Order Completed":
            continue
        touches = [
            r.channel
            for r in analysed()
            if r.customer == p.customer
            and p.ts - window <= r.ts < p.ts
            and r.event != "Order Completed"
        ]
        out.append(touches or [p.channel])
    return out


def lost_paths(window_days: int = 30) -> list[list[str]]:
    window = timedelta(days=window_days)
    buyers = {e.customer for e in analysed() if e.event == "Order Completed"}
    out = []
    for c in sorted({e.customer for e in analysed()} - buyers):
        evs = [e for e in analysed() if e.customer == c]
        last = evs[-1].ts
        out.append([e.channel for e in evs if e.ts >= last - window])
    return out


def _markov_exact(conv: list[list[str]], lost: list[list[str]]) -> dict[str, float]:
    """Removal effects by solving the absorbing chain exactly (Gauss-Jordan, Fractions)."""
    counts: dict[str, dict[str, int]] = {}

    def add(a: str, b: str) -> None:
        counts.setdefault(a, {}).setdefault(b, 0)
        counts[a][b] += 1

    for path, end in [(p, "conv") for p in conv] + [(p, "null") for p in lost]:
        states = ["start", *path, end]
        for a, b in itertools.pairwise(states):
            if a != b:
                add(a, b)
    channels = sorted({c for p in conv + lost for c in p})

    def p_conv(removed: str | None) -> Fraction:
        trans = [s for s in counts if s != removed]
        idx = {s: i for i, s in enumerate(trans)}
        n = len(trans)
        mat = [[Fraction(0)] * (n + 1) for _ in range(n)]
        for s in trans:
            i = idx[s]
            total = sum(counts[s].values())
            mat[i][i] += 1
            for t, k in counts[s].items():
                if t == "conv":
                    mat[i][n] += Fraction(k, total)
                elif t in idx:
                    mat[i][idx[t]] -= Fraction(k, total)
        for col in range(n):
            piv = next(r for r in range(col, n) if mat[r][col] != 0)
            mat[col], mat[piv] = mat[piv], mat[col]
            f = mat[col][col]
            mat[col] = [x / f for x in mat[col]]
            for r in range(n):
                if r != col and mat[r][col] != 0:
                    g = mat[r][col]
                    mat[r] = [a - g * b for a, b in zip(mat[r], mat[col], strict=True)]
        return mat[idx["start"]][n]

    base = p_conv(None)
    effects = {c: 1 - p_conv(c) / base for c in channels}
    norm = sum(effects.values())
    return {c: float(len(conv) * effects[c] / norm) for c in channels}


def attribution(window_days: int = 30) -> dict[str, Any]:
    touches = purchase_touches(window_days)
    models: dict[str, dict[str, float]] = {}

    def credit(model: str, channel: str, x: float) -> None:
        models.setdefault(channel, {}).setdefault(model, 0.0)
        models[channel][model] += x

    for t in touches:
        n = len(t)
        credit("first_touch", t[0], 1.0)
        credit("last_touch", t[-1], 1.0)
        for i, ch in enumerate(t):
            credit("linear", ch, 1.0 / n)
            if n == 1:
                w = 1.0
            elif n == 2:
                w = 0.5
            else:
                w = 0.4 if i in (0, n - 1) else 0.2 / (n - 2)
            credit("position_based", ch, w)
    markov = _markov_exact(touches, lost_paths(window_days))
    keys = ("first_touch", "last_touch", "linear", "position_based")
    return {
        "window_days": window_days,
        "purchases": len(touches),
        "channels": [
            {
                "channel": ch,
                **{k: models.get(ch, {}).get(k, 0.0) for k in keys},
                "markov": markov.get(ch, 0.0),
            }
            for ch in sorted(set(models) | set(markov))
        ],
    }


def drop_off(threshold_days: int = 30) -> list[dict[str, Any]]:
    now = max(e.ts for e in analysed())
    last: dict[str, Ev] = {}
    for e in analysed():
        last[e.customer] = e
    per: dict[str, list[tuple[bool, str | None, str | None]]] = {}
    for cid, stage, since in JOURNEY:
        if cid in REDIRECTS:
            continue
        seen = last.get(cid)
        active = seen.ts if seen else since
        dropped = active < now - timedelta(days=threshold_days)
        per.setdefault(stage, []).append(
            (dropped, seen.channel if seen else None, seen.label if seen else None)
        )
    out = []
    for stage in sorted(per, key=STAGES.index):
        rows = per[stage]
        dropped = [r for r in rows if r[0]]
        tally: dict[tuple[str | None, str | None], int] = {}
        for _, ch, ev in dropped:
            tally[(ch, ev)] = tally.get((ch, ev), 0) + 1
        out.append(
            {
                "stage": stage,
                "customers": len(rows),
                "dropped": len(dropped),
                "drop_rate": len(dropped) / len(rows),
                "last_touch": [
                    {"last_channel": ch, "last_event": ev, "customers": n}
                    for (ch, ev), n in sorted(
                        tally.items(), key=lambda kv: (-kv[1], kv[0][0] or "", kv[0][1] or "")
                    )
                ],
            }
        )
    return out


def touchpoint_lift(window_days: int = 30) -> dict[str, dict[str, Any]]:
    window = timedelta(days=window_days)
    evs = analysed()
    customers = sorted({e.customer for e in evs})
    purchases = [(e.customer, e.ts) for e in evs if e.event == "Order Completed"]

    def converted(c: str, ref: datetime) -> bool:
        return any(pc == c and ref < t <= ref + window for pc, t in purchases)

    out = {}
    for label in sorted({e.label for e in evs} - {"Order Completed"}):
        exp = [0, 0]
        unexp = [0, 0]
        for c in customers:
            mine = [e for e in evs if e.customer == c]
            hits = [e.ts for e in mine if e.label == label]
            ref = hits[0] if hits else mine[0].ts
            bucket = exp if hits else unexp
            bucket[0] += 1
            bucket[1] += converted(c, ref)
        er = exp[1] / exp[0] if exp[0] else None
        ur = unexp[1] / unexp[0] if unexp[0] else None
        out[label] = {
            "exposed": exp[0],
            "exposed_converted": exp[1],
            "exposed_rate": er,
            "unexposed": unexp[0],
            "unexposed_converted": unexp[1],
            "unexposed_rate": ur,
            "lift": er / ur if er is not None and ur else None,
        }
    return out
