"""Stuck and lapsed on the event-time watermark, through the journey processor: a
customer nobody hears from is flagged when *other* customers' events move the
watermark, at a time derived from their own events (not the wall clock)."""

from __future__ import annotations

from typing import Any

import orjson

from cdp.config import Settings
from cdp.journey.processor import JourneyProcessor
from cdp.kafka.reader import read_topic
from cdp.pipeline.records import Record
from cdp.pipeline.runner import BatchRunner


def resolved(
    settings: Settings, offset: int, customer: str, event: str, ts: str, **props: Any
) -> Record:
    ev = {"messageId": f"m{offset}", "type": "track", "event": event, "channel": "web",
          "timestamp": ts, "anonymousId": customer, "properties": props}  # fmt: skip
    value = orjson.dumps({"kind": "event", "customer_id": customer, "event": ev})
    return Record(settings.topic("touchpoints.resolved"), 0, offset, customer.encode(), value)


def test_lapsed_and_stuck_follow_the_watermark(
    settings: Settings, topics: dict[str, str], db: Any
) -> None:
    runner = BatchRunner(settings, JourneyProcessor(settings))
    runner.run([
        resolved(settings, 0, "cus_a", "Product Viewed", "2026-01-01T10:00:00Z"),
        resolved(settings, 1, "cus_b", "Product Added", "2026-01-01T11:00:00Z",
                 product_id="p1", price=10.0, quantity=1),
    ])  # fmt: skip
    assert db.execute("SELECT count(*) FROM journey WHERE flags <> '{}'").fetchone() == (0,)

    # 20 days later someone else shows up: b's cart is now stuck (14 days), a not lapsed
    runner.run([resolved(settings, 2, "cus_c", "Page Viewed", "2026-01-21T10:00:00Z")])
    flags = dict(db.execute("SELECT customer_id, flags FROM journey").fetchall())
    assert flags == {"cus_a": [], "cus_b": ["stuck"], "cus_c": []}

    # 100 days after a and b: both lapsed (90 days); c (80 days) not yet
    runner.run([resolved(settings, 3, "cus_d", "Page Viewed", "2026-04-11T10:00:00Z")])
    rows = db.execute(
        "SELECT customer_id, from_stage, to_stage, event_time FROM transitions"
        " WHERE to_stage IN ('stuck', 'lapsed') ORDER BY customer_id, to_stage"
    ).fetchall()
    got = {(c, to): at.isoformat() for c, _frm, to, at in rows}
    # each flag at the event time it became true, not when the batch noticed it
    assert got == {
        ("cus_a", "lapsed"): "2026-04-01T10:00:00+00:00",
        ("cus_b", "lapsed"): "2026-04-01T11:00:00+00:00",
        ("cus_b", "stuck"): "2026-01-15T11:00:00+00:00",
    }
    published = {
        (d["customer_id"], d["to"])
        for d in (
            orjson.loads(m.value())
            for m in read_topic(settings, settings.topic("journey.transitions"))
        )
    }
    assert {("cus_a", "lapsed"), ("cus_b", "lapsed"), ("cus_b", "stuck")} <= published
    runner.close()
