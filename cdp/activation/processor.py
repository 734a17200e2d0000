"""The actions processor: resolved events and journey transitions → pending timers,
customer facts and one decision per trigger in PostgreSQL (offset-fenced, one
transaction per batch), fired actions published on ``cdp.actions`` after the commit.

- events are de-duplicated by messageId, transitions by a stable transition id;
- customer ids are mapped through ``customer_redirects``; a merge record re-keys the
  loser's facts, timers and actions to the winner (facts fold commutatively);
- the watermark is the event time every active input partition has reached (the
  minimum over partitions of their latest event time, idle ones left out; see
  :func:`cdp.activation.engine.combined_watermark`) minus the rules' ``lateness``; every
  timer whose ``due_at`` it reached is decided by the pure engine
  (:func:`cdp.activation.engine.evaluate`) in ``(due, time, id)`` order;
- the payload is read from the journey row, written by another worker: timers fire
  only at the watermark of the latest *checkpoint* (the watermark and the
  resolved-topic offsets read, recorded after every batch) that the journey has
  applied too, so the cart includes every event the watermark has passed. The
  journey's marker on ``cdp.journey.progress`` wakes this processor when the journey
  catches up after the stream has gone quiet;
- a decision is a row with a UNIQUE ``action_id`` inserted in the batch's transaction,
  so a trigger is decided once whatever is redelivered or replayed; its payload
  (cart, latest touchpoints, preferred channel, masked identifiers) is built from
  PostgreSQL and stored with it, so re-publishing sends the same bytes;
- when a fenced record is redelivered (a crash between commit and publish), the
  actions its batch fired are re-published (consumers de-duplicate by ``action_id``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb

from cdp.activation.engine import (
    FIRED,
    Decision,
    Identification,
    Profile,
    Trigger,
    combined_watermark,
    due_at,
    evaluate,
    preferred_channel,
    profile_of_event,
    transition_id,
    triggers_of_event,
    triggers_of_transition,
)
from cdp.activation.rules import ActionRules
from cdp.config import Settings
from cdp.errors import ValidationError
from cdp.events import Event
from cdp.events.envelope import in_time_range
from cdp.identity.rules import MergeRules
from cdp.journey.processor import NAME as JOURNEY
from cdp.journey.processor import redirects
from cdp.pipeline import dedup, fence
from cdp.pipeline.publish import Output
from cdp.pipeline.records import Record
from cdp.pipeline.resolved import decode as decode_resolved
from cdp.pipeline.resolved import load_object
from cdp.pipeline.runner import BatchResult

NAME = "actions"
_LOCK_KEY = 0x0CD9_AC71


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def lock(conn: psycopg.Connection[Any]) -> None:
    """The actions processor's transaction-scoped advisory lock: its batches,
    ``cdp identity forget`` and ``cdp identity split`` serialise on it."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))


def _transition(rec: Record) -> tuple[str, str, datetime, str | None] | None:
    """A journey transition (customer, stage, time, messageId); None for one that names
    no customer, stage or time; :class:`cdp.errors.ValidationError` if unreadable."""
    doc = load_object(rec, "a transition")
    cid, to, at, mid = (doc.get(k) for k in ("customer_id", "to", "event_time", "message_id"))
    if not (cid and to and at):
        return None
    if not all(isinstance(v, str) for v in (cid, to, at)) or not isinstance(mid, str | None):
        raise ValidationError(
            "wrong_type", "customer_id, to, event_time and message_id are strings"
        )
    try:
        moment = datetime.fromisoformat(at)
    except ValueError as exc:
        raise ValidationError("invalid_value", f"event_time: {exc}") from exc
    if moment.tzinfo is None or not in_time_range(moment):
        raise ValidationError("invalid_value", "event_time needs a zone and a time 1900-2200")
    return cid, to, moment, mid


class ActionProcessor:
    name = NAME

    def __init__(self, settings: Settings, rules: ActionRules | None = None) -> None:
        self.rules = rules or ActionRules.load()
        self.topic = settings.topic("actions")
        self.resolved_topic = settings.topic("touchpoints.resolved")
        self.transitions_topic = settings.topic("journey.transitions")
        self.progress_topic = settings.topic("journey.progress")
        self.identifies = Identification(MergeRules.load(), settings.default_phone_region)
        self.webhooks = sorted(self.rules.webhooks())

    # -- the batch ----------------------------------------------------------------
    def apply(self, conn: psycopg.Connection[Any], records: Sequence[Record]) -> BatchResult:
        result = BatchResult()
        lock(conn)
        fresh, fenced = fence.split_fenced(fence.load_fences(conn, NAME, records), records)
        result.count("fenced", len(fenced))

        events: list[tuple[str, Event]] = []
        merges: list[tuple[str, str]] = []
        transitions: list[tuple[str, str, datetime, str | None]] = []
        latest: dict[tuple[str, int], datetime] = {}  # per input partition
        for rec in fresh:
            if rec.topic == self.progress_topic:
                continue  # a wake-up: the journey's offsets are read from PostgreSQL
            at: datetime | None = None
            try:
                if rec.topic == self.transitions_topic:
                    transition = _transition(rec)
                    if transition is not None:
                        transitions.append(transition)
                        at = transition[2]
                else:
                    resolved = decode_resolved(rec)
                    doc = resolved.doc
                    if resolved.event is None:
                        merges.append((doc["winner"], doc["loser"]))
                    elif doc.get("customer_id"):
                        events.append((doc["customer_id"], resolved.event))
                        at = resolved.event.timestamp
            except ValidationError as exc:  # unreadable: dead-lettered, never a crash
                result.refuse(rec, exc, NAME)
            # transitions are derived from resolved events: they never hold time back
            if at is not None and rec.topic != self.transitions_topic:
                key = (rec.topic, rec.partition)
                latest[key] = max(at, latest.get(key, at))

        events, transitions = self._dedup(conn, events, transitions, result)
        redirect = redirects(
            conn,
            {c for c, _ in events} | {w for w, _ in merges} | {c for c, *_ in transitions},
        )

        def current(cid: str) -> str:
            return redirect.get(cid, cid)

        for winner, loser in merges:
            self._merge(conn, current(winner), loser)
        result.count("merges", len(merges))

        # facts and triggers
        profiles: dict[str, Profile] = {}
        cancels: list[tuple[str, str, str, datetime]] = []
        triggers: list[Trigger] = []
        for cid, ev in events:
            target = current(cid)
            profiles[target] = Profile.combine(
                profiles.get(target, Profile()), profile_of_event(ev, self.rules, self.identifies)
            )
            if ev.type == "track" and ev.event in self.rules.cancel_events:
                cancels.append((ev.messageId, target, ev.event, ev.timestamp))
            triggers += triggers_of_event(target, ev, self.rules)
        for cid, to, at, mid in transitions:
            triggers += triggers_of_transition(current(cid), to, at, mid, self.rules)
        result.count("events", len(events))
        result.count("transitions", len(transitions))
        self._write_profiles(conn, profiles)
        self._write_cancels(conn, cancels)

        fence.advance(conn, NAME, records)
        watermark = self._watermark(conn, latest)
        checkpoint = self._checkpoint(conn, watermark) if watermark is not None else 0
        result.count("triggers", self._write_timers(conn, triggers, checkpoint))
        ready = self._journey_caught_up(conn)
        if checkpoint and (ready is None or ready[0] < checkpoint):
            result.count("journey_behind")  # its timers wait for the journey
        if ready is not None and records:
            seq, ready_watermark = ready
            self._fire(conn, ready_watermark - self.rules.lateness, seq, records[-1], result)

        if fenced:
            result.count("republished", self._republish(conn, fenced, result))
        return result

    # -- de-duplication and ids -----------------------------------------------------
    def _dedup(
        self,
        conn: psycopg.Connection[Any],
        events: list[tuple[str, Event]],
        transitions: list[tuple[str, str, datetime, str | None]],
        result: BatchResult,
    ) -> tuple[list[tuple[str, Event]], list[tuple[str, str, datetime, str | None]]]:
        tids = [transition_id(c, to, at, m) for c, to, at, m in transitions]
        new = dedup.claim_new(conn, NAME, [e.messageId for _, e in events] + tids)
        out_e: list[tuple[str, Event]] = []
        for cid, ev in events:
            if ev.messageId in new:
                new.discard(ev.messageId)
                out_e.append((cid, ev))
        out_t = []
        for t, tid in zip(transitions, tids, strict=True):
            if tid in new:
                new.discard(tid)
                out_t.append(t)
        result.count("duplicates", len(events) + len(transitions) - len(out_e) - len(out_t))
        return out_e, out_t

    # -- state ----------------------------------------------------------------------
    def _merge(self, conn: psycopg.Connection[Any], winner: str, loser: str) -> None:
        """Fold the loser's facts into the winner's and re-key its rows."""
        if winner == loser:
            return
        both = self._load_profiles(conn, [winner, loser])
        if loser in both:
            merged = Profile.combine(both.get(winner, Profile()), both[loser])
            conn.execute("DELETE FROM activation_profiles WHERE customer_id = %s", (loser,))
            self._upsert_profiles(conn, {winner: merged}, replace=True)
        for table in ("activation_cancels", "activation_timers", "activation_actions"):
            conn.execute(
                f"UPDATE {table} SET customer_id = %s WHERE customer_id = %s", (winner, loser)
            )

    def _load_profiles(
        self, conn: psycopg.Connection[Any], ids: Iterable[str]
    ) -> dict[str, Profile]:
        ids = sorted(set(ids))
        if not ids:
            return {}
        out: dict[str, Profile] = {}
        for cid, ident, c_at, c_mid, c_val, channels in conn.execute(
            "SELECT customer_id, identified_at, consent_at, consent_mid, consent_value, channels"
            " FROM activation_profiles WHERE customer_id = ANY(%b)",
            (ids,),
        ):
            consent = (c_at, c_mid, c_val) if c_at is not None else None
            out[cid] = Profile(ident, consent, {}, dict(channels))
        cancel_events = sorted(self.rules.cancel_events)
        if cancel_events:
            for cid, event, at, mid in conn.execute(
                "SELECT customer_id, event, event_time, message_id FROM activation_cancels"
                " WHERE customer_id = ANY(%b)",
                (ids,),
            ):
                p = out.get(cid, Profile())
                out[cid] = Profile.combine(p, Profile(cancels={event: frozenset({(at, mid)})}))
        return out

    def _write_profiles(self, conn: psycopg.Connection[Any], profiles: dict[str, Profile]) -> None:
        self._upsert_profiles(conn, profiles, replace=False)

    def _upsert_profiles(
        self, conn: psycopg.Connection[Any], profiles: dict[str, Profile], replace: bool
    ) -> None:
        """Combine ``profiles`` into the stored ones (min / max-by-point / sums)."""
        if not profiles:
            return
        rows = []
        for cid, p in sorted(profiles.items()):
            c = p.consent
            rows.append((
                cid, p.identified_at, c[0] if c else None, c[1] if c else None,
                c[2] if c else None, Jsonb(dict(p.channels), dumps=_dumps),
            ))  # fmt: skip
        if replace:
            sql_channels = "EXCLUDED.channels"
        else:
            sql_channels = (
                "(SELECT COALESCE(jsonb_object_agg(k, v), '{}'::jsonb) FROM ("
                " SELECT k, sum(v::int) AS v FROM ("
                "  SELECT key AS k, value AS v FROM jsonb_each_text(activation_profiles.channels)"
                "  UNION ALL SELECT key, value FROM jsonb_each_text(EXCLUDED.channels)) u"
                " GROUP BY k) s)"
            )
        # the incoming consent is the latest stated one: by (event time, messageId)
        newer = (
            "EXCLUDED.consent_at IS NOT NULL AND (activation_profiles.consent_at IS NULL"
            " OR (EXCLUDED.consent_at, EXCLUDED.consent_mid)"
            " > (activation_profiles.consent_at, activation_profiles.consent_mid))"
        )
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO activation_profiles (customer_id, identified_at, consent_at,"
                " consent_mid, consent_value, channels) VALUES (%s,%s,%s,%s,%s,%s)"
                " ON CONFLICT (customer_id) DO UPDATE SET"
                " identified_at = LEAST(activation_profiles.identified_at,"
                "   EXCLUDED.identified_at),"
                f" consent_at = CASE WHEN {newer} THEN EXCLUDED.consent_at"
                "   ELSE activation_profiles.consent_at END,"
                f" consent_value = CASE WHEN {newer} THEN EXCLUDED.consent_value"
                "   ELSE activation_profiles.consent_value END,"
                f" consent_mid = CASE WHEN {newer} THEN EXCLUDED.consent_mid"
                "   ELSE activation_profiles.consent_mid END,"
                f" channels = {sql_channels}",
                rows,
            )

    def _write_cancels(
        self, conn: psycopg.Connection[Any], cancels: list[tuple[str, str, str, datetime]]
    ) -> None:
        if cancels:
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO activation_cancels (message_id, customer_id, event, event_time)"
                    " VALUES (%s,%s,%s,%s) ON CONFLICT (message_id) DO NOTHING",
                    cancels,
                )

    def _write_timers(
        self, conn: psycopg.Connection[Any], triggers: list[Trigger], checkpoint: int
    ) -> int:
        """Pending timers, each with the checkpoint that covers its trigger: it fires
        only once the journey has applied that checkpoint's offsets."""
        rows = []
        for t in triggers:
            rule = self.rules.by_name[t.rule]
            due, deferred = due_at(rule, t.at, self.rules)
            rows.append(
                (t.action_id, t.rule, t.customer_id, t.message_id, t.at, due, deferred, checkpoint)
            )
        if not rows:
            return 0
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO activation_timers (action_id, rule, customer_id,"
                " trigger_message_id, trigger_at, due_at, deferred, checkpoint)"
                " SELECT %s,%s,%s,%s,%s,%s,%s,%s WHERE NOT EXISTS ("
                "  SELECT 1 FROM activation_actions a WHERE a.action_id = %s)"
                " ON CONFLICT (action_id) DO NOTHING",
                [(*r, r[0]) for r in rows],
            )
        return len(rows)

    def _watermark(
        self, conn: psycopg.Connection[Any], latest: dict[tuple[str, int], datetime]
    ) -> datetime | None:
        """Advance the per-partition event times (rows ``actions@topic:partition``) and
        the combined watermark (row ``actions``, never moving back); returns it."""
        if latest:
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO watermarks (consumer, event_time) VALUES (%s, %s)"
                    " ON CONFLICT (consumer) DO UPDATE"
                    " SET event_time = GREATEST(watermarks.event_time, EXCLUDED.event_time)",
                    [(f"{NAME}@{t}:{p}", at) for (t, p), at in sorted(latest.items())],
                )
            rows = conn.execute(
                "SELECT event_time FROM watermarks WHERE starts_with(consumer, %s)",
                (f"{NAME}@",),
            ).fetchall()
            combined = combined_watermark((r[0] for r in rows), self.rules.idle_partition)
            if combined is not None:
                conn.execute(
                    "INSERT INTO watermarks (consumer, event_time) VALUES (%s, %s)"
                    " ON CONFLICT (consumer) DO UPDATE"
                    " SET event_time = GREATEST(watermarks.event_time, EXCLUDED.event_time)",
                    (NAME, combined),
                )
        row = conn.execute(
            "SELECT event_time FROM watermarks WHERE consumer = %s", (NAME,)
        ).fetchone()
        return row[0] if row else None

    def _checkpoint(self, conn: psycopg.Connection[Any], watermark: datetime) -> int:
        """Record a checkpoint: ``watermark`` and the resolved-topic offsets this
        processor has read (unless the latest checkpoint says the same); returns the
        latest checkpoint's seq (0: none)."""
        conn.execute(
            "WITH now_read AS ("
            "  SELECT array_agg(partition ORDER BY partition) AS p,"
            "         array_agg(last_offset ORDER BY partition) AS o"
            "  FROM applied_offsets WHERE consumer = %(me)s AND topic = %(topic)s)"
            " INSERT INTO activation_checkpoints (watermark, partitions, offsets)"
            " SELECT %(wm)s, p, o FROM now_read WHERE p IS NOT NULL AND NOT EXISTS ("
            "  SELECT 1 FROM activation_checkpoints c WHERE c.partitions = now_read.p"
            "   AND c.offsets = now_read.o AND c.watermark = %(wm)s)",
            {"me": NAME, "topic": self.resolved_topic, "wm": watermark},
        )
        row = conn.execute("SELECT max(seq) FROM activation_checkpoints").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def _journey_caught_up(self, conn: psycopg.Connection[Any]) -> tuple[int, datetime] | None:
        """The latest checkpoint (seq, watermark) whose offsets the journey processor
        has applied too (None: none yet); older checkpoints are pruned."""
        row = conn.execute(
            "SELECT seq, watermark FROM activation_checkpoints c WHERE NOT EXISTS ("
            "  SELECT 1 FROM unnest(c.partitions, c.offsets) AS x(p, o)"
            "  LEFT JOIN applied_offsets j ON j.consumer = %s AND j.topic = %s"
            "   AND j.partition = x.p"
            "  WHERE j.last_offset IS NULL OR j.last_offset < x.o)"
            " ORDER BY seq DESC LIMIT 1",
            (JOURNEY, self.resolved_topic),
        ).fetchone()
        if row is None:
            return None
        conn.execute("DELETE FROM activation_checkpoints WHERE seq < %s", (row[0],))
        return int(row[0]), row[1]

    # -- firing ---------------------------------------------------------------------
    def _fire(
        self,
        conn: psycopg.Connection[Any],
        watermark: datetime,
        checkpoint: int,
        src: Record,
        result: BatchResult,
    ) -> None:
        due = conn.execute(
            "SELECT action_id, rule, customer_id, trigger_message_id, trigger_at"
            " FROM activation_timers WHERE due_at <= %s AND checkpoint <= %s FOR UPDATE",
            (watermark, checkpoint),
        ).fetchall()
        if not due:
            return
        # a timer may have been written under an id merged away since: redirect it
        redirect = redirects(conn, {r[2] for r in due})
        triggers = [Trigger(rule, redirect.get(cid, cid), mid, at) for _, rule, cid, mid, at in due]
        customers = sorted({t.customer_id for t in triggers})
        profiles = self._load_profiles(conn, customers)
        fired = self._fired_history(conn, customers)
        decisions = evaluate(triggers, profiles, watermark, self.rules, fired)
        conn.execute(
            "DELETE FROM activation_timers WHERE action_id = ANY(%b)", ([r[0] for r in due],)
        )
        payloads = self._payloads(conn, {d.customer_id for d in decisions if d.outcome == FIRED})
        docs = {
            d.action_id: self._action_doc(d, payloads.get(d.customer_id, {}))
            for d in decisions
            if d.outcome == FIRED
        }
        rows = []
        for d in decisions:
            doc = docs.get(d.action_id)
            rows.append((
                d.action_id, d.rule, d.action, d.customer_id, d.trigger_message_id, d.trigger_at,
                d.due_at, d.deferred, d.outcome,
                Jsonb(doc, dumps=_dumps) if doc is not None else None,
                src.topic, src.partition, src.offset,
            ))  # fmt: skip
        inserted: set[str] = set()
        if not rows:
            return
        with conn.cursor() as cur:
            # one pipelined batch; RETURNING (one result set per row) tells which were new
            cur.executemany(
                "INSERT INTO activation_actions (action_id, rule, action, customer_id,"
                " trigger_message_id, trigger_at, due_at, deferred, outcome, payload,"
                " src_topic, src_partition, src_offset)"
                " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
                " ON CONFLICT (action_id) DO NOTHING RETURNING action_id",
                rows,
                returning=True,
            )
            while True:
                row = cur.fetchone()
                if row is not None:
                    inserted.add(str(row[0]))
                if not cur.nextset():
                    break
        deliveries = []
        for d in decisions:
            if d.action_id not in inserted:
                continue
            result.count(f"decided_{d.outcome}")
            if d.outcome != FIRED:
                continue
            result.outputs.append(self._output(d.customer_id, d.action, docs[d.action_id]))
            rule = self.rules.by_name[d.rule]
            deliveries += [
                (d.action_id, name) for name in rule.destinations if name in self.webhooks
            ]
        if deliveries:
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO activation_deliveries (action_id, destination) VALUES (%s, %s)"
                    " ON CONFLICT DO NOTHING",
                    deliveries,
                )

    def _fired_history(
        self, conn: psycopg.Connection[Any], customers: list[str]
    ) -> dict[tuple[str, str], list[datetime]]:
        out: dict[tuple[str, str], list[datetime]] = {}
        for cid, action, due in conn.execute(
            "SELECT customer_id, action, due_at FROM activation_actions"
            " WHERE customer_id = ANY(%b) AND outcome = 'fired'",
            (customers,),
        ):
            out.setdefault((cid, action), []).append(due)
        return out

    def _payloads(self, conn: psycopg.Connection[Any], customers: set[str]) -> dict[str, Any]:
        """Cart, latest touchpoint per channel, preferred channel, stage and masked
        identifiers per customer, from PostgreSQL. Never plaintext identifiers."""
        ids = sorted(customers)
        if not ids:
            return {}
        out: dict[str, dict[str, Any]] = {cid: {} for cid in ids}
        for cid, stage, cart, cart_value, summary in conn.execute(
            "SELECT customer_id, stage, cart, cart_value, summary FROM journey"
            " WHERE customer_id = ANY(%b)",
            (ids,),
        ):
            touch = summary.get("touch", {}) if isinstance(summary, dict) else {}
            out[cid].update(
                stage=stage,
                cart=cart,
                cart_value=cart_value,
                touchpoints={ch: {"at": v[0], "event": v[2]} for ch, v in sorted(touch.items())},
            )
        for cid, channels in conn.execute(
            "SELECT customer_id, channels FROM activation_profiles WHERE customer_id = ANY(%b)",
            (ids,),
        ):
            out[cid]["touchpoint_counts"] = dict(channels)
        for cid, id_type, masked in conn.execute(
            "SELECT customer_id, id_type, masked FROM identities"
            " WHERE customer_id = ANY(%b) ORDER BY id_type, masked",
            (ids,),
        ):
            out[cid].setdefault("identifiers", {}).setdefault(id_type, []).append(masked)
        for data in out.values():
            counts = data.get("touchpoint_counts", {})
            last = {
                ch: datetime.fromisoformat(v["at"]) for ch, v in data.get("touchpoints", {}).items()
            }
            data["preferred_channel"] = preferred_channel(counts, last)
        return out

    def _action_doc(self, d: Decision, data: dict[str, Any]) -> dict[str, Any]:
        rule = self.rules.by_name[d.rule]
        payload: dict[str, Any] = {}
        for part in rule.payload:
            if part == "cart":
                payload["cart"] = data.get("cart", [])
                payload["cart_value"] = data.get("cart_value", 0.0)
            elif part == "touchpoints":
                payload["touchpoints"] = data.get("touchpoints", {})
            elif part == "preferred_channel":
                payload["preferred_channel"] = data.get("preferred_channel")
            elif part == "identifiers":
                payload["identifiers"] = data.get("identifiers", {})
            elif part == "stage":
                payload["stage"] = data.get("stage")
        return {
            "version": 1,
            "action_id": d.action_id,
            "rule": d.rule,
            "action": d.action,
            "customer_id": d.customer_id,
            "trigger": {"message_id": d.trigger_message_id, "at": d.trigger_at.isoformat()},
            "due_at": d.due_at.isoformat(),
            "deferred": d.deferred,
            "marketing": rule.marketing,
            "destinations": list(rule.destinations),
            "payload": payload,
        }

    def _output(self, customer_id: str, action: str, doc: Any) -> Output:
        return Output(
            self.topic, customer_id.encode(), orjson.dumps(doc), (("action", action.encode()),)
        )

    def _republish(
        self, conn: psycopg.Connection[Any], fenced: Sequence[Record], result: BatchResult
    ) -> int:
        """Actions fired by the batches of redelivered (fenced) records, published again
        with their stored payload: a crash between commit and publish loses nothing."""
        keys = sorted({(r.topic, r.partition, r.offset) for r in fenced})
        rows = conn.execute(
            "SELECT a.customer_id, a.action, a.payload FROM activation_actions a"
            " JOIN unnest(%b::text[], %b::int[], %b::bigint[]) AS f(t, p, o)"
            "   ON a.src_topic = f.t AND a.src_partition = f.p AND a.src_offset = f.o"
            " WHERE a.outcome = 'fired' ORDER BY a.due_at, a.action_id",
            ([k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]),
        ).fetchall()
        for cid, action, payload in rows:
            result.outputs.append(self._output(payload.get("customer_id", cid), action, payload))
        return len(rows)
