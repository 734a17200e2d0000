"""The journey processor: resolved events and merge records → each customer's
commutative summary, stage and transitions in PostgreSQL (offset-fenced, one
transaction per batch), transitions published on ``cdp.journey.transitions``.

Customer ids are mapped through ``customer_redirects`` first, so an event resolved to
a customer that has since been merged lands on the survivor, whichever partition or
worker sees it first. A merge record folds the loser's summary into the winner's:
summaries combine commutatively, so the result does not depend on which came first.
Stuck and lapsed are evaluated against the event-time watermark, never the wall clock.
"""

from __future__ import annotations

from collections.abc import Sequence
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
from cdp.pipeline.runner import BatchResult

NAME = "journey"
_LOCK_KEY = 0x0CD9_10E7


@dataclass(slots=True)
class _Row:
    customer_id: str
    summary: Summary
    before: StageState | None
    before_flags: frozenset[str]
    exists: bool


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


class JourneyProcessor:
    name = NAME

    def __init__(self, settings: Settings, rules: JourneyRules | None = None) -> None:
        self.rules = rules or JourneyRules.load()
        self.topic = settings.topic("journey.transitions")

    def apply(self, conn: psycopg.Connection[Any], records: Sequence[Record]) -> BatchResult:
        result = BatchResult()
        set_json_loads(orjson.loads, conn)  # jsonb summaries: orjson, not stdlib json
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        fresh, fenced = fence.split_fenced(fence.load_fences(conn, NAME, records), records)
        result.count("fenced", len(fenced))

        events: list[tuple[str, Event]] = []
        merges: list[tuple[str, str]] = []
        for rec in fresh:
            doc = orjson.loads(rec.value)
            if doc.get("kind") == "merge":
                merges.append((doc["winner"], doc["loser"]))
            elif doc.get("kind") == "event" and doc.get("customer_id"):
                events.append((doc["customer_id"], Event.model_validate(doc["event"])))
        new_ids = dedup.claim_new(conn, NAME, (e.messageId for _, e in events))
        unique: list[tuple[str, Event]] = []
        for cid, event in events:
            if event.messageId in new_ids:
                new_ids.discard(event.messageId)
                unique.append((cid, event))
        result.count("duplicates", len(events) - len(unique))

        redirect = self._redirects(conn, {c for c, _ in unique} | {w for w, _ in merges})

        def current(cid: str) -> str:
            return redirect.get(cid, cid)

        rows = self._load(
            conn, {current(c) for c, _ in unique} | {current(w) for w, _ in merges}
            | {loser for _, loser in merges}
        )  # fmt: skip
        watermark = self._watermark(conn, unique)

        deleted: list[str] = []
        for winner, loser in merges:
            target = current(winner)
            loser_row = rows.pop(loser, None)
            if loser_row is None or loser == target:
                continue
            row = rows.setdefault(target, self._empty(target))
            row.summary = Summary.combine(row.summary, loser_row.summary)
            if loser_row.exists:
                deleted.append(loser)
        for cid, event in unique:
            target = current(cid)
            row = rows.setdefault(target, self._empty(target))
            row.summary = Summary.combine(row.summary, Summary.from_event(event, self.rules))
        result.count("events", len(unique))
        result.count("merges", len(merges))

        self._write(conn, rows, deleted, watermark, result)
        fence.advance(conn, NAME, records)
        return result

    # -- reads ------------------------------------------------------------------
    def _redirects(self, conn: psycopg.Connection[Any], ids: set[str]) -> dict[str, str]:
        if not ids:
            return {}
        rows = conn.execute(
            "SELECT old_id, customer_id FROM customer_redirects WHERE old_id = ANY(%s)",
            (sorted(ids),),
        ).fetchall()
        return {r[0]: r[1] for r in rows}

    def _empty(self, cid: str) -> _Row:
        return _Row(cid, Summary(), None, frozenset(), False)

    def _load(self, conn: psycopg.Connection[Any], ids: set[str]) -> dict[str, _Row]:
        if not ids:
            return {}
        out: dict[str, _Row] = {}
        for cid, summary, stage, since, mid, row_flags in conn.execute(
            "SELECT customer_id, summary, stage, stage_since, stage_message_id, flags"
            " FROM journey WHERE customer_id = ANY(%s)",
            (sorted(ids),),
        ):
            out[cid] = _Row(
                cid, Summary.from_json(summary), StageState(stage, since, mid),
                frozenset(row_flags), True,
            )  # fmt: skip
        return out

    def _watermark(
        self, conn: psycopg.Connection[Any], events: Sequence[tuple[str, Event]]
    ) -> datetime | None:
        latest = max((e.timestamp for _, e in events), default=None)
        if latest is not None:
            conn.execute(
                "INSERT INTO watermarks (consumer, event_time) VALUES (%s, %s)"
                " ON CONFLICT (consumer) DO UPDATE"
                " SET event_time = GREATEST(watermarks.event_time, EXCLUDED.event_time)",
                (NAME, latest),
            )
        row = conn.execute(
            "SELECT event_time FROM watermarks WHERE consumer = %s", (NAME,)
        ).fetchone()
        return row[0] if row else None

    # -- writes -----------------------------------------------------------------
    def _write(
        self,
        conn: psycopg.Connection[Any],
        rows: dict[str, _Row],
        deleted: list[str],
        watermark: datetime | None,
        result: BatchResult,
    ) -> None:
        upserts = []
        transitions: list[tuple[str, str | None, str, datetime, str | None]] = []
        for cid, row in sorted(rows.items()):
            if row.summary.is_empty:
                continue
            after = stage_of(row.summary, self.rules)
            now_flags = flags(row.summary, watermark, self.rules) if watermark else frozenset()
            before_stage = row.before.stage if row.before else None
            if before_stage != after.stage:
                transitions.append((cid, before_stage, after.stage, after.since, after.message_id))
            for flag in sorted(now_flags - row.before_flags):
                transitions.append(
                    (cid, after.stage, flag, self._flag_time(flag, row.summary), None)
                )
            s = row.summary
            summary, cart = Jsonb(s.to_json(), dumps=_dumps), Jsonb(s.cart(), dumps=_dumps)
            upserts.append((
                cid, after.stage, after.since, after.message_id, summary, cart, s.cart_value(),
                s.cart_updated_at(), s.purchase_count, s.first_channel, s.first_seen,
                s.last_touch_at, s.last_channel, sorted(now_flags),
            ))  # fmt: skip
        with conn.cursor() as cur:
            if deleted:
                cur.execute("DELETE FROM journey WHERE customer_id = ANY(%s)", (deleted,))
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
        if watermark is not None:
            transitions += self._sweep(conn, watermark)
        result.count("transitions", len(transitions))
        for cid, frm, to, at, mid in transitions:
            value = orjson.dumps(
                {"customer_id": cid, "from": frm, "to": to, "event_time": at, "message_id": mid}
            )
            result.outputs.append(Output(self.topic, cid.encode(), value))

    def _flag_time(self, flag: str, s: Summary) -> datetime:
        """When a flag became true in event time (not when we noticed): deterministic."""
        last = s.last_touch_at or s.last_seen
        assert last is not None  # flags are only computed for non-empty summaries
        if flag == LAPSED:
            return last + self.rules.lapsed_after
        return (s.cart_updated_at() or last) + self.rules.stuck_after

    def _sweep(
        self, conn: psycopg.Connection[Any], watermark: datetime
    ) -> list[tuple[str, str | None, str, datetime, str | None]]:
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
        out: list[tuple[str, str | None, str, datetime, str | None]] = []
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
