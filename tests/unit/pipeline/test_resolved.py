"""What journey and archive take from the resolved topic, and what they dead-letter."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from cdp.errors import ValidationError
from cdp.pipeline.records import Record
from cdp.pipeline.resolved import decode, read_resolved
from cdp.pipeline.runner import BatchResult

EVENT = {"messageId": "m-1", "type": "track", "event": "Product Viewed", "channel": "web",
         "timestamp": "2026-03-01T10:00:00+00:00", "anonymousId": "a-1"}  # fmt: skip

# an event an older identity accepted: times before 1900 are refused today
OLD_RULES = {**EVENT, "timestamp": "1850-01-01T00:00:00+00:00"}


def _rec(value: Any, offset: int = 0) -> Record:
    raw = value if isinstance(value, bytes) else orjson.dumps(value)
    return Record("cdp.touchpoints.resolved", 0, offset, b"k", raw)


def test_events_and_merges_are_taken() -> None:
    ev = decode(_rec({"kind": "event", "customer_id": "c-1", "node_id": "n", "event": EVENT}))
    assert ev.event is not None and ev.event.messageId == "m-1" and ev.doc["customer_id"] == "c-1"
    unresolved = decode(_rec({"kind": "event", "customer_id": None, "event": EVENT}))
    assert unresolved.event is not None
    merge = decode(_rec({"kind": "merge", "winner": "c-1", "loser": "c-2"}))
    assert merge.event is None and merge.doc["loser"] == "c-2"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"{oops", "invalid_json"),
        (b'{"kind": "event", "revenue": 1e400}', "invalid_json"),
        (b"[1, 2]", "not_an_object"),
        ({"kind": "split"}, "invalid_value"),
        ({"kind": "merge", "winner": "c-1"}, "wrong_type"),
        ({"kind": "event", "customer_id": 7, "event": EVENT}, "wrong_type"),
        ({"kind": "event", "customer_id": "c", "event": "x"}, "not_an_object"),
        ({"kind": "event", "customer_id": "c", "event": OLD_RULES}, "invalid_value"),
    ],
)  # fmt: skip
def test_records_a_reader_cannot_take_have_a_reason(value: Any, reason: str) -> None:
    with pytest.raises(ValidationError) as err:
        decode(_rec(value))
    assert err.value.reason == reason


def test_read_resolved_dead_letters_and_keeps_the_rest() -> None:
    result = BatchResult()
    good = _rec({"kind": "merge", "winner": "a", "loser": "b"}, offset=1)
    taken = read_resolved([_rec(b"{oops"), good], "journey", result)
    assert [r.record for r in taken] == [good]
    [dead] = result.dead_letters
    assert (dead.record.offset, dead.reason, dead.processor) == (0, "invalid_json", "journey")
    assert result.stats == {"invalid_invalid_json": 1}
