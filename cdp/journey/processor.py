"""The journey processor: resolved events and merge records → each customer's
commutative summary, stage and transitions in PostgreSQL (offset-fenced, one
transaction per batch), transitions published on ``cdp.journey.transitions``.

An event lands on the customer its identifier (the record's ``node_id``, the node
identity resolution attributed it by) belongs to *now*, falling back to the record's
customer id mapped through ``customer_redirects``: so an event resolved to a customer
that has since been merged lands on the survivor, and one resolved before a split on
the customer its identifier went to, whichever partition or worker sees it first. A
merge record folds the loser's summary into the winner's while identity still maps
both to one customer: summaries combine commutatively, so the result does not depend
on which came first. Every applied event is also kept as its single-event summary in
``journey_events``, from which a split recomputes the customers it separates
(:mod:`cdp.journey.recompute`). Stuck and lapsed are evaluated against the
event-time watermark, never the wall clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb, set_json_loads

from cdp.config import Settings
from cdp.events import Event
from cdp.journey import LAPSED, JourneyRules, StageState, Summary, flags, stage_of
from cdp.pipeline import dedup, fence
from cdp.pipeline.publish import Output
from cdp.pipeline.records import Record
from cdp.pipeline.resolved import read_resolved
from cdp.pipeline.runner import BatchResult

NAME = "journey"
LOCK_KEY = 0x0CD9_10E7


TransitionRow = tuple[str, str | None, str, datetime, str | None]


@dataclass(slots=True)
class JourneyRow:
    """A journey row being rewritten: its new summary and what it was before."""

    customer_id: str
    summary: Summary
    before: StageState | None
    before_flags: frozenset[str]
    exists: bool


@dataclass(frozen=True, slots=True)
class Correction:
    """Rows rewritten outside the stream (a split): a changed stage is recorded as a
    transition with this ``message_id`` at the watermark (the event-time "now"), so
    it follows every transition recorded before; a customer without a stage before
    gets it at the stage's own ``since``, as a new customer does."""

    message_id: str


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def lock(conn: psycopg.Connection[Any]) -> None:
    """The journey's transaction-scoped advisory lock: every writer of the journey
    tables (the processor's batches, a split) serialises on it."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))


def should_fold(winner: str, loser: str, current: Callable[[str], str]) -> bool:
    """Whether a merge record still means "fold the loser's summary into the
    winner's": only while identity still maps both to the same customer. A merge that
    was split since (or whose loser lives on separately after a split re-evaluated the
    links) folds nothing: the split already recomputed both customers."""
    target = current(winner)
    return loser != target and current(loser) == target


class JourneyProcessor:
    name = NAME

    def __init__(self, settings: Settings, rules: JourneyRules | None = None) -> None:
        self.rules = rules or JourneyRules.load()
        self.topic = settings.topic("journey.transitions")
        self.progress_topic = settings.topic("journey.progress")

    def apply(self, conn: psycopg.Connection[Any], records: Sequence[Record]) -> BatchResult:
        result = BatchResult()
        set_json_loads(orjson.loads, conn)  # jsonb summaries: orjson, not stdlib json
        lock(conn)
        fresh, fenced = fence.split_fenced(fence.load_fences(conn, NAME, records), records)
        result.count("fenced", len(fenced))

        events: list[tuple[str, str | None, Event]] = []
        merges: list[tuple[str, str]] = []
        for resolved in read_resolved(fresh, NAME, result):
            doc = resolved.doc
            if resolved.event is None:
                merges.append((doc["winner"], doc["loser"]))
            elif doc.get("customer_id"):
                node = doc.get("node_id")
                events.append(
                    (doc["customer_id"], node if isinstance(node, str) else None, resolved.event)
                )
        new_ids = dedup.claim_new(conn, NAME, (e.messageId for _, _, e in events))
        unique: list[tuple[str, str | None, Event]] = []
        for cid, node, event in events:
            if event.messageId in new_ids:
                new_ids.discard(event.messageId)
                unique.append((cid, node, event))
        result.count("duplicates", len(events) - len(unique))

        redirect = redirects(conn, {c for c, _, _ in unique} | {c for m in merges for c in m})
        owner = node_customers(conn, {n for _, n, _ in unique if n})

        def current(cid: str) -> str:
            return redirect.get(cid, cid)

        def target_of(cid: str, node: str | None) -> str:
            # the customer the event's identifier belongs to now: after a split that is
            # not necessarily the (redirected) customer it was resolved to
            return (owner.get(node) if node else None) or current(cid)

        targets = [target_of(cid, node) for cid, node, _ in unique]
        rows = load_rows(
            conn, set(targets) | {current(w) for w, _ in merges} | {lo for _, lo in merges}
        )
        watermark = self._watermark(conn, [e for _, _, e in unique])

        deleted: list[str] = []
        stale = 0
        for winner, loser in merges:
            if not should_fold(winner, loser, current):
                if loser != current(winner):
                    stale += 1
                continue
            loser_row = rows.pop(loser, None)
            if loser_row is None:
                continue
            target = current(winner)
            row = rows.setdefault(target, empty_row(target))
            row.summary = Summary.combine(row.summary, loser_row.summary)
            if loser_row.exists:
                deleted.append(loser)
        stored: list[tuple[str, str | None, str, str]] = []
        for (_, node, event), target in zip(unique, targets, strict=True):
            one = Summary.from_event(event, self.rules)
            row = rows.setdefault(target, empty_row(target))
            row.summary = Summary.combine(row.summary, one)
            stored.append((event.messageId, node, target, _dumps(one.to_json())))
        result.count("events", len(unique))
        result.count("merges", len(merges))
        if stale:
            result.count("merges_split", stale)

        store_events(conn, stored)
        transitions = write_rows(conn, self.rules, rows, deleted, watermark)
        if watermark is not None:
            transitions += self._sweep(conn, watermark)
        result.count("transitions", len(transitions))
        for cid, frm, to, at, mid in transitions:
            value = orjson.dumps(
                {"customer_id": cid, "from": frm, "to": to, "event_time": at, "message_id": mid}
            )
            result.outputs.append(Output(self.topic, cid.encode(), value))
        fence.advance(conn, NAME, records)
        result.outputs.append(self._progress(records))
        return result

    def _progress(self, records: Sequence[Record]) -> Output:
        """A marker on ``cdp.journey.progress`` published after each batch: the actions
        processor waits for the journey (see :mod:`cdp.activation.processor`), and this
        wakes it when the journey has caught up on a stream that has gone quiet."""
        applied = [
            {"topic": t, "partition": p, "offset": o}
            for (t, p), o in sorted(fence.top_offsets(records).items())
        ]
        return Output(
            self.progress_topic,
            NAME.encode(),
            orjson.dumps({"processor": NAME, "applied": applied}),
        )

    def _watermark(self, conn: psycopg.Connection[Any], events: Sequence[Event]) -> datetime | None:
        latest = max((e.timestamp for e in events), default=None)
        if latest is not None:
            conn.execute(
                "INSERT INTO watermarks (consumer, event_time) VALUES (%s, %s)"
                " ON CONFLICT (consumer) DO UPDATE"
                " SET event_time = GREATEST(watermarks.event_time, EXCLUDED.event_time)",
                (NAME, latest),
            )
        return load_watermark(conn)

    def _sweep(self, conn: psycopg.Connection[Any], watermark: datetime) -> list[TransitionRow]:
        """Flag customers the watermark has left behind (no event of theirs needed)."""
        lapsed = watermark - self.rules.lapsed_after
        stuck = watermark - self.rules.stuck_after
        rows = conn.execute(
            "WITH f AS ("
            "  SELECT customer_id, stage,"
            "    CASE WHEN last_event_at < %s AND NOT 'lapsed' = ANY(flags) THEN 'lapsed' END AS l,"
            "    CASE WHEN stage = 'consideration' AND cart_value > 0 AND cart_updated_at < %s"
            "         AND NOT 'stuck' = ANY(flags) THEN 'stuck' END AS s"
            "  FROM journey"
            "  WHERE (last_event_at < %s AND NOT 'lapsed' = ANY(flags))"
            "     OR (stage = 'consideration' AND cart_value > 0 AND cart_updated_at < %s"
            "         AND NOT 'stuck' = ANY(flags)))"
            " UPDATE journey j SET flags = j.flags || array_remove(ARRAY[f.l, f.s], NULL)"
            " FROM f WHERE j.customer_id = f.customer_id"
            " RETURNING j.customer_id, f.stage, f.l, f.s, j.last_event_at, j.cart_updated_at",
            (lapsed, stuck, lapsed, stuck),
        ).fetchall()
        out: list[TransitionRow] = []
        lapse, stick = self.rules.lapsed_after, self.rules.stuck_after
        for cid, stage, lapsed_flag, stuck_flag, last_at, cart_at in rows:
            if lapsed_flag:
                out.append((cid, stage, "lapsed", last_at + lapse, None))
            if stuck_flag:
                out.append((cid, stage, "stuck", cart_at + stick, None))
        if out:
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO transitions (customer_id, from_stage, to_stage, event_time,"
                    " message_id) VALUES (%s,%s,%s,%s,%s) ON CONFLICT DO NOTHING",
                    out,
                )
        return out


# -- reads and writes shared with the split's recomputation (cdp/journey/recompute.py) --


def load_watermark(conn: psycopg.Connection[Any]) -> datetime | None:
    row = conn.execute("SELECT event_time FROM watermarks WHERE consumer = %s", (NAME,)).fetchone()
    return row[0] if row else None


def redirects(conn: psycopg.Connection[Any], ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    rows = conn.execute(
        "SELECT old_id, customer_id FROM customer_redirects WHERE old_id = ANY(%b)",
        (sorted(ids),),
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def node_customers(conn: psycopg.Connection[Any], nodes: set[str]) -> dict[str, str]:
    """identifier (node id) -> the customer identity resolution says it belongs to now."""
    if not nodes:
        return {}
    rows = conn.execute(
        "SELECT node_id, customer_id FROM identities WHERE node_id = ANY(%b)", (sorted(nodes),)
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def empty_row(cid: str) -> JourneyRow:
    return JourneyRow(cid, Summary(), None, frozenset(), False)


def load_rows(conn: psycopg.Connection[Any], ids: set[str]) -> dict[str, JourneyRow]:
    if not ids:
        return {}
    out: dict[str, JourneyRow] = {}
    for cid, summary, stage, since, mid, row_flags in conn.execute(
        "SELECT customer_id, summary, stage, stage_since, stage_message_id, flags"
        " FROM journey WHERE customer_id = ANY(%b)",
        (sorted(ids),),
    ):
        out[cid] = JourneyRow(
            cid, Summary.from_json(summary), StageState(stage, since, mid),
            frozenset(row_flags), True,
        )  # fmt: skip
    return out


def store_events(
    conn: psycopg.Connection[Any], events: Sequence[tuple[str, str | None, str, str]]
) -> None:
    """Keep each applied event as (messageId, node id, customer, single-event summary
    JSON) in ``journey_events``: what a split recomputes the customers from."""
    if not events:
        return
    cols = [list(c) for c in zip(*events, strict=True)]
    conn.execute(
        "INSERT INTO journey_events (message_id, node_id, customer_id, summary)"
        " SELECT m, n, c, s::jsonb FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[])"
        " AS e(m, n, c, s) ON CONFLICT (message_id) DO NOTHING",
        cols,
    )


def flag_time(flag: str, s: Summary, rules: JourneyRules) -> datetime:
    """When a flag became true in event time (not when we noticed): deterministic."""
    last = s.last_touch_at or s.last_seen
    assert last is not None  # flags are only computed for non-empty summaries
    if flag == LAPSED:
        return last + rules.lapsed_after
    return (s.cart_updated_at() or last) + rules.stuck_after


def stage_transition(
    cid: str,
    before: StageState | None,
    after: StageState,
    watermark: datetime | None,
    correction: Correction | None = None,
) -> TransitionRow | None:
    """The stage transition to record for a row going from ``before`` to ``after``:
    in the stream at ``after.since`` with the event that made the stage true; for a
    :class:`Correction` with its message id, at the watermark when the customer had a
    stage before (so it is the latest entry of the timeline), else at ``since``."""
    frm = before.stage if before is not None else None
    if frm == after.stage:
        return None
    at, mid = after.since, after.message_id
    if correction is not None:
        mid = correction.message_id
        if before is not None and watermark is not None:
            at = max(watermark, after.since)
    return (cid, frm, after.stage, at, mid)


def write_rows(
    conn: psycopg.Connection[Any],
    rules: JourneyRules,
    rows: Mapping[str, JourneyRow],
    deleted: Sequence[str],
    watermark: datetime | None,
    correction: Correction | None = None,
) -> list[TransitionRow]:
    """Upsert ``rows`` (empty summaries are skipped), delete ``deleted`` and record the
    stage and flag transitions; returns the transitions recorded."""
    upserts = []
    transitions: list[TransitionRow] = []
    for cid, row in sorted(rows.items()):
        if row.summary.is_empty:
            continue
        after = stage_of(row.summary, rules)
        now_flags = flags(row.summary, watermark, rules) if watermark else frozenset()
        change = stage_transition(cid, row.before, after, watermark, correction)
        if change is not None:
            transitions.append(change)
        for flag in sorted(now_flags - row.before_flags):
            transitions.append((cid, after.stage, flag, flag_time(flag, row.summary, rules), None))
        s = row.summary
        summary, cart = Jsonb(s.to_json(), dumps=_dumps), Jsonb(s.cart(), dumps=_dumps)
        upserts.append((
            cid, after.stage, after.since, after.message_id, summary, cart, s.cart_value(),
            s.cart_updated_at(), s.purchase_count, s.first_channel, s.first_seen,
            s.last_touch_at, s.last_channel, sorted(now_flags),
        ))  # fmt: skip
    with conn.cursor() as cur:
        if deleted:
            cur.execute("DELETE FROM journey WHERE customer_id = ANY(%b)", (list(deleted),))
        cur.executemany(
            "INSERT INTO journey (customer_id, stage, stage_since, stage_message_id, summary,"
            " cart, cart_value, cart_updated_at, purchase_count, first_channel, first_seen,"
            " last_event_at, last_channel, flags, updated_at)"
            " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s, now())"
            " ON CONFLICT (customer_id) DO UPDATE SET stage = EXCLUDED.stage,"
            " stage_since = EXCLUDED.stage_since,"
            " stage_message_id = EXCLUDED.stage_message_id, summary = EXCLUDED.summary,"
            " cart = EXCLUDED.cart, cart_value = EXCLUDED.cart_value,"
            " cart_updated_at = EXCLUDED.cart_updated_at,"
            " purchase_count = EXCLUDED.purchase_count, first_channel = EXCLUDED.first_channel,"
            " first_seen = EXCLUDED.first_seen, last_event_at = EXCLUDED.last_event_at,"
            " last_channel = EXCLUDED.last_channel, flags = EXCLUDED.flags, updated_at = now()",
            upserts,
        )
        if transitions:
            cur.executemany(
                "INSERT INTO transitions (customer_id, from_stage, to_stage, event_time,"
                " message_id) VALUES (%s,%s,%s,%s,%s) ON CONFLICT DO NOTHING",
                transitions,
            )
    return transitions
