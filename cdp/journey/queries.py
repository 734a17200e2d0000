"""Read-side queries of the journey tables, shared by ``cdp journey`` and the profile API.

Everything time-relative (how long a customer has been in a stage, who is stuck) is
measured against the journey watermark (``watermarks``, consumer ``journey``: the
greatest event time the journey processor has seen), never the wall clock, so the
answers are the same however late the data is replayed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import psycopg

from cdp.config import Settings
from cdp.errors import CDPError
from cdp.identity.queries import IdentityQueries
from cdp.journey.processor import NAME as JOURNEY_CONSUMER
from cdp.journey.rules import STAGES, JourneyRules
from cdp.journey.stage import LAPSED, STUCK

FLAGS: tuple[str, ...] = (STUCK, LAPSED)
MAX_LIMIT = 10_000

_JOURNEY_COLUMNS = (
    "stage, stage_since, stage_message_id, summary, cart, cart_value, cart_updated_at,"
    " purchase_count, first_channel, first_seen, last_event_at, last_channel, flags"
)


class JourneyQueryError(CDPError):
    """A bad argument to a journey query (unknown stage, negative age, ...)."""


def last_touchpoints(summary: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The latest touchpoint per channel from a stored summary (``summary["touch"]``:
    ``{channel: [iso time, messageId, event label]}``); ``{}`` for an empty summary."""
    touch = (summary or {}).get("touch") or {}
    out: dict[str, dict[str, Any]] = {}
    for channel, value in sorted(touch.items()):
        if isinstance(value, list | tuple) and len(value) == 3:
            out[channel] = {"at": value[0], "event": value[2], "message_id": value[1]}
    return out


def _revenue(summary: Mapping[str, Any] | None) -> float:
    try:
        return float((summary or {}).get("purchases", {}).get("revenue", 0))
    except (TypeError, ValueError, AttributeError):
        return 0.0


class JourneyQueries:
    def __init__(self, conn: psycopg.Connection[Any], rules: JourneyRules | None = None) -> None:
        self.conn = conn
        self._rules = rules

    @property
    def rules(self) -> JourneyRules:
        if self._rules is None:
            self._rules = JourneyRules.load()
        return self._rules

    def watermark(self) -> datetime | None:
        row = self.conn.execute(
            "SELECT event_time FROM watermarks WHERE consumer = %s", (JOURNEY_CONSUMER,)
        ).fetchone()
        return row[0] if row else None

    # -- one customer -------------------------------------------------------------------

    def exists(self, customer_id: str) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM journey WHERE customer_id = %s", (customer_id,)
        ).fetchone()
        return row is not None

    def show(self, customer_id: str) -> dict[str, Any]:
        """The customer's journey: stage, cart, flags, channels, the latest touchpoint
        per channel and the timeline of transitions. ``stage`` is None (and the rest
        empty) when the journey processor has not seen the customer yet."""
        row = self.conn.execute(
            f"SELECT {_JOURNEY_COLUMNS} FROM journey WHERE customer_id = %s", (customer_id,)
        ).fetchone()
        watermark = self.watermark()
        out: dict[str, Any] = {
            "customer_id": customer_id,
            "stage": None,
            "stage_since": None,
            "stage_message_id": None,
            "days_in_stage": None,
            "cart": [],
            "cart_value": 0.0,
            "cart_updated_at": None,
            "flags": [],
            "first_channel": None,
            "first_seen": None,
            "last_event_at": None,
            "last_channel": None,
            "channels": [],
            "purchase_count": 0,
            "revenue": 0.0,
            "last_touchpoints": {},
            "watermark": watermark,
            "timeline": self.timeline(customer_id),
        }
        if row is None:
            return out
        (stage, since, since_mid, summary, cart, cart_value, cart_at, purchases, first_ch,
         first_seen, last_at, last_ch, flags) = row  # fmt: skip
        out.update(
            stage=stage,
            stage_since=since,
            stage_message_id=since_mid,
            days_in_stage=_days(watermark - since) if watermark and since else None,
            cart=list(cart or []),
            cart_value=float(cart_value or 0),
            cart_updated_at=cart_at,
            flags=sorted(flags or []),
            first_channel=first_ch,
            first_seen=first_seen,
            last_event_at=last_at,
            last_channel=last_ch,
            channels=sorted((summary or {}).get("channels") or []),
            purchase_count=purchases,
            revenue=_revenue(summary),
            last_touchpoints=last_touchpoints(summary),
        )
        return out

    def timeline(self, customer_id: str) -> list[dict[str, Any]]:
        """Stage transitions and flag events of the customer, oldest first."""
        rows = self.conn.execute(
            "SELECT from_stage, to_stage, event_time, message_id FROM transitions"
            " WHERE customer_id = %s ORDER BY event_time, transition_id",
            (customer_id,),
        ).fetchall()
        return [
            {
                "from": frm,
                "to": to,
                "event_time": at,
                "message_id": mid,
                "kind": "flag" if to in FLAGS else "stage",
            }
            for frm, to, at, mid in rows
        ]

    # -- lists and counts ---------------------------------------------------------------

    def stuck(
        self,
        stage: str | None = None,
        older_than_days: float | None = None,
        limit: int = 100,
    ) -> dict[str, Any]:
        """Customers flagged ``stuck``; or, with ``stage`` and/or ``older_than_days``,
        customers (in that stage, or any) whose ``stage_since`` is more than N days
        before the journey watermark (N defaults to the rules' ``stuck_after_days``).
        Longest-waiting first."""
        if stage is not None and stage not in STAGES:
            raise JourneyQueryError(f"unknown stage {stage!r}; one of {', '.join(STAGES)}")
        if older_than_days is not None and older_than_days < 0:
            raise JourneyQueryError("--older-than must be >= 0 days")
        if not 1 <= limit <= MAX_LIMIT:
            raise JourneyQueryError(f"--limit must be between 1 and {MAX_LIMIT}")
        watermark = self.watermark()
        by_flag = stage is None and older_than_days is None
        criteria: dict[str, Any] = {"flag": STUCK} if by_flag else {}
        cutoff: datetime | None = None
        if not by_flag:
            days = (
                older_than_days
                if older_than_days is not None
                else self.rules.stuck_after.total_seconds() / 86400
            )
            criteria = {"stage": stage, "older_than_days": days}
            if watermark is not None:
                cutoff = watermark - timedelta(days=days)
        out: dict[str, Any] = {"watermark": watermark, "criteria": criteria, "customers": []}
        params: list[Any]
        if by_flag:
            where, params = "%s = ANY(flags)", [STUCK]
        elif cutoff is None:  # no watermark yet: nothing can be older than it
            return out
        else:
            where, params = "stage_since < %s", [cutoff]
            if stage is not None:
                where += " AND stage = %s"
                params.append(stage)
        rows = self.conn.execute(
            "SELECT customer_id, stage, stage_since, cart_value,"
            " jsonb_array_length(cart), cart_updated_at, last_event_at, last_channel, flags"
            f" FROM journey WHERE {where} ORDER BY stage_since, customer_id LIMIT %s",
            (*params, limit),
        ).fetchall()
        out["customers"] = [
            {
                "customer_id": cid,
                "stage": st,
                "stage_since": since,
                "days_in_stage": _days(watermark - since) if watermark else None,
                "cart_value": float(value or 0),
                "cart_items": items or 0,
                "cart_updated_at": cart_at,
                "last_event_at": last_at,
                "last_channel": last_ch,
                "flags": sorted(flags or []),
            }
            for cid, st, since, value, items, cart_at, last_at, last_ch, flags in rows
        ]
        return out

    def stats(self) -> dict[str, Any]:
        """Customers per stage, per stage by first channel, and flag counts."""
        per_stage: dict[str, int] = dict.fromkeys(STAGES, 0)
        by_channel: dict[str, dict[str, int]] = {s: {} for s in STAGES}
        total = 0
        for stage, channel, n in self.conn.execute(
            "SELECT stage, coalesce(first_channel, 'unknown'), count(*) FROM journey"
            " GROUP BY 1, 2 ORDER BY 1, 2"
        ):
            per_stage[stage] = per_stage.get(stage, 0) + n
            by_channel.setdefault(stage, {})[channel] = n
            total += n
        flag_counts: dict[str, int] = dict.fromkeys(FLAGS, 0)
        for flag, n in self.conn.execute(
            "SELECT f, count(*) FROM journey, unnest(flags) AS f GROUP BY 1 ORDER BY 1"
        ):
            flag_counts[flag] = n
        return {
            "customers": total,
            "watermark": self.watermark(),
            "stages": per_stage,
            "stages_by_first_channel": by_channel,
            "flags": flag_counts,
        }


def resolve_customer(conn: psycopg.Connection[Any], settings: Settings, ref: str) -> str | None:
    """``TYPE:VALUE`` or a customer id (followed through merges) → customer id, or None.

    A customer id known only to the journey table (no identifiers yet) is accepted too.
    Raises :class:`cdp.identity.queries.LookupError_` for a malformed ``TYPE:VALUE``.
    """
    identity = IdentityQueries(conn, settings)
    cid = identity.customer_for(ref)
    if cid is None and ref.startswith("cus_"):
        current = identity.current(ref)
        if JourneyQueries(conn).exists(current):
            return current
    return cid


def _days(delta: timedelta) -> float:
    return round(delta.total_seconds() / 86400, 2)
