"""Recompute the journeys a split separates, from the customers' own events.

A merge folds two summaries into one; summaries cannot be "un-combined", so a split
(``cdp identity split``) recomputes instead. The journey processor keeps every event it
applied in ``journey_events`` as its single-event summary together with the
identifier (node id) identity resolution attributed it by. After the split has
re-partitioned the identity graph, each of those events belongs to the customer its
identifier is in now; each affected customer's summary is the combination of exactly
those events (the same fold as the stream and :func:`cdp.journey.reference_summaries`,
so the row equals the reference over the customer's own events).

:func:`plan` is the pure part; :func:`recompute_split` runs it inside the split's
transaction, under the journey's advisory lock, so no journey batch interleaves: a
batch either ran before (its events are in ``journey_events``) or runs after (it
attributes its events through the identifiers' new customers and skips merge records
the split undid, see :func:`cdp.journey.processor.should_fold`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import psycopg
from psycopg.types.json import set_json_loads

from cdp.journey.processor import (
    Correction,
    JourneyRow,
    load_rows,
    load_watermark,
    lock,
    write_rows,
)
from cdp.journey.rules import JourneyRules
from cdp.journey.stage import LAPSED, STUCK, StageState, stage_of
from cdp.journey.summary import Summary


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One ``journey_events`` row as the plan needs it."""

    message_id: str
    owner: str | None  # the customer the event's identifier belongs to now
    stored: str  # the customer it was folded into, mapped through redirects
    summary: Summary
    folded_into: str = ""  # journey_events.customer_id as stored ("": same as stored)


@dataclass(frozen=True, slots=True)
class Plan:
    summaries: dict[str, Summary]  # customer -> the summary of its own events
    deleted: list[str]  # customers whose row goes: no event is theirs any more
    moved: list[tuple[str, str]]  # (messageId, customer) whose stored customer changes
    consistent: bool  # the events add up to exactly the rows they replace


@dataclass
class Recomputed:
    """What a split did to the journey tables."""

    stages: dict[str, str] = field(default_factory=dict)  # customer -> stage
    deleted: list[str] = field(default_factory=list)
    events: int = 0
    moved: int = 0
    transitions: int = 0
    consistent: bool = True


def attribute(event: StoredEvent, live: Collection[str], fallback: str) -> str:
    """The customer an event belongs to after the split: its identifier's customer;
    for an event without a known identifier the customer it was folded into, if that
    customer still exists, else ``fallback`` (the customer the split started from)."""
    if event.owner is not None and event.owner in live:
        return event.owner
    return event.stored if event.stored in live else fallback


def _combine_all(summaries: Iterable[Summary]) -> Summary:
    total = Summary()
    for s in summaries:
        total = Summary.combine(total, s)
    return total


def plan(
    rows: Mapping[str, Summary],
    events: Iterable[StoredEvent],
    live: Collection[str],
    fallback: str,
) -> Plan:
    """Group the component's events by the customer each belongs to after the split.

    ``rows`` are the journey rows of every customer id of the component before the
    split (the merged customer, the ids redirected to it and the split's customers).
    ``consistent`` is False when the stored events do not add up to those rows, e.g.
    for events applied before ``journey_events`` existed: they cannot be recomputed.
    """
    summaries: dict[str, Summary] = {}
    moved: list[tuple[str, str]] = []
    seen: list[Summary] = []
    for e in sorted(events, key=lambda e: e.message_id):
        cid = attribute(e, live, fallback)
        summaries[cid] = Summary.combine(summaries.get(cid, Summary()), e.summary)
        seen.append(e.summary)
        if cid != (e.folded_into or e.stored):
            moved.append((e.message_id, cid))
    deleted = sorted(set(rows) - set(summaries))
    consistent = _combine_all(rows.values()) == _combine_all(seen)
    return Plan(summaries, deleted, moved, consistent)


def _last_stages(conn: psycopg.Connection[Any], ids: list[str]) -> dict[str, StageState]:
    """The last stage recorded in ``transitions`` for customers without a journey row
    (a customer merged away keeps its history): a split that restores it records a
    transition only when its stage differs from that."""
    if not ids:
        return {}
    rows = conn.execute(
        "SELECT DISTINCT ON (customer_id) customer_id, to_stage, event_time, message_id"
        " FROM transitions WHERE customer_id = ANY(%b) AND to_stage <> ALL(%s)"
        " ORDER BY customer_id, transition_id DESC",
        (ids, [STUCK, LAPSED]),
    ).fetchall()
    return {cid: StageState(stage, at, mid or "") for cid, stage, at, mid in rows}


def recompute_split(
    conn: psycopg.Connection[Any],
    rules: JourneyRules,
    nodes: Collection[str],
    customer_ids: Collection[str],
    live: Collection[str],
    fallback: str,
    cause: str,
) -> Recomputed:
    """Rewrite the journey rows of a split's component inside the caller's
    transaction (which has re-partitioned ``identities``).

    ``nodes``: every identifier of the component; ``customer_ids``: every customer id
    it had (the merged customer and the ids redirected to it); ``live``: its customers
    after the split; ``cause``: the message id recorded on the transitions it causes.
    Stage changes are recorded as transitions (:class:`Correction`), history is kept;
    nothing is published on ``cdp.journey.transitions`` (docs/journey.md).
    """
    lock(conn)
    set_json_loads(orjson.loads, conn)
    ids = sorted(set(customer_ids) | set(live))
    old = load_rows(conn, set(ids))
    stored = [
        StoredEvent(mid, owner, current, Summary.from_json(summary), raw)
        for mid, owner, current, summary, raw in conn.execute(
            "SELECT e.message_id, i.customer_id, coalesce(r.customer_id, e.customer_id),"
            " e.summary, e.customer_id FROM journey_events e"
            " LEFT JOIN identities i ON i.node_id = e.node_id"
            " LEFT JOIN customer_redirects r ON r.old_id = e.customer_id"
            " WHERE e.node_id = ANY(%b) OR (e.node_id IS NULL AND e.customer_id = ANY(%b))",
            (sorted(nodes), ids),
        )
    ]
    p = plan({cid: r.summary for cid, r in old.items()}, stored, live, fallback)
    history = _last_stages(conn, sorted(set(p.summaries) - set(old)))
    rows: dict[str, JourneyRow] = {}
    for cid, summary in p.summaries.items():
        before = old.get(cid)
        if before is not None:
            rows[cid] = JourneyRow(cid, summary, before.before, before.before_flags, True)
        else:
            rows[cid] = JourneyRow(cid, summary, history.get(cid), frozenset(), False)
    wm = load_watermark(conn)
    transitions = write_rows(conn, rules, rows, p.deleted, wm, Correction(cause))
    if p.moved:
        conn.execute(
            "UPDATE journey_events e SET customer_id = m.cid"
            " FROM unnest(%b::text[], %b::text[]) AS m(mid, cid) WHERE e.message_id = m.mid",
            ([m for m, _ in p.moved], [c for _, c in p.moved]),
        )
    return Recomputed(
        stages={cid: stage_of(r.summary, rules).stage for cid, r in sorted(rows.items())},
        deleted=p.deleted,
        events=len(stored),
        moved=len(p.moved),
        transitions=len(transitions),
        consistent=p.consistent,
    )
