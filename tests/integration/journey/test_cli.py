"""``cdp journey show | stuck | stats`` on data applied by the real workers."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from cdp.cli import journey
from cdp.config import Settings
from tests.integration.journey.conftest import Invoke, make_invoke


@pytest.fixture
def cli(loaded: Settings) -> Invoke:
    return make_invoke(loaded, journey)


def _json(cli: Invoke, *args: str) -> Any:
    return orjson.loads(cli("journey", *args, "--json").stdout)


def test_show_ann_by_email_and_by_customer_id(cli: Invoke) -> None:
    ann = _json(cli, "show", "email:ann@example.nl")
    assert ann["customer_id"].startswith("cus_")
    assert ann["stage"] == "decision"
    assert ann["stage_since"].startswith("2026-03-03T15:00")
    assert ann["stage_message_id"] == "s1"
    assert ann["cart"] == [] and ann["cart_value"] == 0
    assert ann["purchase_count"] == 1 and ann["revenue"] == 30.0
    assert ann["first_channel"] == "web" and ann["last_channel"] == "store"
    assert ann["channels"] == ["loyalty", "store", "web"]
    assert ann["flags"] == []
    assert ann["watermark"].startswith("2026-03-20T08:00")
    assert ann["last_touchpoints"]["store"] == {
        "at": "2026-03-03T15:00:00+00:00", "event": "Order Completed", "message_id": "s1",
    }  # fmt: skip
    assert ann["last_touchpoints"]["web"]["message_id"] == "w2"  # identify is no touchpoint
    timeline = ann["timeline"]
    assert timeline, "a customer has at least its first transition"
    assert timeline[0]["from"] is None
    assert (timeline[-1]["to"], timeline[-1]["message_id"]) == ("decision", "s1")
    times = [t["event_time"] for t in timeline]
    assert times == sorted(times)

    # the same customer through its id and any other identifier; the spelling of the
    # identifier value does not matter (normalised and hashed like the stream does)
    assert _json(cli, "show", ann["customer_id"]) == ann
    assert _json(cli, "show", "email: ANN@example.nl ")["customer_id"] == ann["customer_id"]
    assert _json(cli, "show", "loyalty_card:6012-3456")["customer_id"] == ann["customer_id"]

    human = cli("journey", "show", "email:ann@example.nl")
    assert ann["customer_id"] in human.output and "timeline" in human.output


def test_show_errors(cli: Invoke) -> None:
    missing = cli("journey", "show", "email:nobody@example.nl", code=3)
    assert "no customer for email:nobody@example.nl" in missing.output
    cli("journey", "show", "cus_doesnotexist", code=3)
    assert "expected TYPE:VALUE" in cli("journey", "show", "ann", code=1).output


def test_stats_counts_stages_channels_and_flags(cli: Invoke) -> None:
    stats = _json(cli, "stats")
    assert stats["customers"] == 5
    assert stats["stages"] == {
        "awareness": 1, "consideration": 3, "decision": 1, "service": 0, "loyalty": 0,
    }  # fmt: skip
    assert stats["stages_by_first_channel"] == {
        "awareness": {"web": 1},
        "consideration": {"app": 1, "store": 2},
        "decision": {"web": 1},
        "service": {},
        "loyalty": {},
    }
    assert stats["flags"] == {"stuck": 1, "lapsed": 0}
    assert "consideration" in cli("journey", "stats").output


def test_stuck_by_flag_and_by_age_against_the_watermark(cli: Invoke) -> None:
    flagged = _json(cli, "stuck")
    assert flagged["criteria"] == {"flag": "stuck"}
    assert flagged["watermark"].startswith("2026-03-20T08:00")
    [abandoner] = flagged["customers"]
    assert abandoner["stage"] == "consideration" and abandoner["flags"] == ["stuck"]
    assert (abandoner["cart_value"], abandoner["cart_items"]) == (25.0, 1)
    assert abandoner["days_in_stage"] == pytest.approx(17.83, abs=0.01)
    x1 = _json(cli, "show", abandoner["customer_id"])
    assert x1["cart"][0]["product_id"] == "sku-9" and x1["timeline"][-1]["to"] == "stuck"

    # watermark 03-20 08:00: kiosk customers entered consideration 03-03 16:00/16:05
    # (16.7 days before), the abandoner 03-02 12:00 (17.8), Ann decision 03-03 15:00
    def ids(*args: str) -> list[str]:
        return [c["customer_id"] for c in _json(cli, "stuck", *args)["customers"]]

    assert len(ids("--stage", "consideration", "--older-than", "16")) == 3
    assert ids("--stage", "consideration", "--older-than", "17") == [abandoner["customer_id"]]
    assert ids("--stage", "decision", "--older-than", "17") == []
    assert len(ids("--stage", "decision", "--older-than", "16")) == 1
    assert len(ids("--older-than", "16")) == 4  # any stage; not the 03-20 visitor
    assert len(ids("--stage", "consideration")) == 3  # default: stuck_after_days (14)
    older = _json(cli, "stuck", "--older-than", "16", "--limit", "2")["customers"]
    assert len(older) == 2
    assert older[0]["customer_id"] == abandoner["customer_id"]  # longest in stage first

    assert "unknown stage" in cli("journey", "stuck", "--stage", "nope", code=1).output
    assert "customers flagged stuck: 1" in cli("journey", "stuck").output
