"""`cdp identity ...` against a graph built by the real identity processor."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from cdp.config import Settings
from cdp.identity.processor import IdentityProcessor
from cdp.kafka.producer import Producer
from cdp.pipeline.runner import BatchRunner
from tests.integration.test_e2e import SCENARIO
from tests.integration.test_ingestion import records_of

EXTRA = [
    # Bob: a second person with his own login and card, sharing the family email
    {"messageId": "b1", "type": "identify", "channel": "app", "userId": "u-2",
     "timestamp": "2026-03-04T08:00:00Z", "identifiers": {"email": "ann@example.nl"}},
    {"messageId": "b2", "type": "track", "event": "Product Viewed", "channel": "web",
     "timestamp": "2026-03-04T09:00:00Z", "anonymousId": "a-9",
     "identifiers": {"email": "bob@example.nl"}},
]  # fmt: skip


@pytest.fixture
def graph(settings: Settings, topics: dict[str, str]) -> None:
    with Producer(settings) as producer:
        producer.send_many([*SCENARIO, *EXTRA])
    runner = BatchRunner(settings, IdentityProcessor(settings))
    for ch in ("web", "app", "store", "loyalty"):
        runner.run(records_of(settings, settings.topic(f"touchpoints.{ch}")))
    runner.close()


def js(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return orjson.loads(result.stdout)


def test_lookup_resolve_stats_conflicts(graph: None, cli: Any) -> None:
    ann = js(cli("identity", "lookup", "email:ANN@example.nl", "--json"))
    assert {i["type"] for i in ann["identifiers"]} == {
        "anonymous_id",
        "user_id",
        "email",
        "loyalty_card",
    }
    assert all("ann@" not in i["value"] for i in ann["identifiers"]), "values are masked"
    assert (
        js(cli("identity", "lookup", ann["customer_id"], "--json"))["customer_id"]
        == ann["customer_id"]
    )
    assert cli("identity", "lookup", "email:nobody@example.nl").exit_code == 3

    out = cli(
        "identity",
        "resolve",
        "-",
        input="user_id:u-1\nloyalty_card:6012 3456\nemail:x@y.zz\nbogus\n",
    )
    assert out.exit_code == 0, out.output
    rows = [orjson.loads(line) for line in out.stdout.splitlines()]
    assert [r["customer_id"] for r in rows] == [ann["customer_id"]] * 2 + [None, None]

    stats = js(cli("identity", "stats", "--json"))
    assert stats["identifiers_per_type"]["user_id"] == 2
    assert stats["largest_clusters"][0]["customer_id"] == ann["customer_id"]
    # u-2 identified with Ann's email: a second user_id would break the limit of 1
    conflicts = js(cli("identity", "conflicts", "--json"))
    assert len(conflicts) == 1 and conflicts[0]["id_type"] == "user_id"
    assert (
        js(cli("identity", "lookup", "user_id:u-2", "--json"))["customer_id"] != ann["customer_id"]
    )


def test_manual_merge_respects_limits_then_split_reverts(graph: None, cli: Any) -> None:
    refused = cli("identity", "merge", "user_id:u-1", "user_id:u-2", "--reason", "test")
    assert refused.exit_code != 0 and "limit" in refused.output
    merged = cli(
        "identity", "merge", "email:bob@example.nl", "user_id:u-2", "--reason", "same person"
    )
    assert merged.exit_code == 0, merged.output
    bob = js(cli("identity", "lookup", "email:bob@example.nl", "--json"))
    assert (
        bob["customer_id"] == js(cli("identity", "lookup", "user_id:u-2", "--json"))["customer_id"]
    )
    history = js(cli("identity", "history", bob["customer_id"], "--json"))
    manual = [h for h in history if h["reason"].startswith("manual")]
    assert len(manual) == 1

    split = js(cli("identity", "split", str(manual[0]["merge_id"]), "--json"))
    assert len(split["customers"]) == 2
    assert (js(cli("identity", "lookup", "email:bob@example.nl", "--json"))["customer_id"]
            != js(cli("identity", "lookup", "user_id:u-2", "--json"))["customer_id"])  # fmt: skip


def test_rebuild_dry_run_finds_no_difference(graph: None, cli: Any) -> None:
    report = js(cli("identity", "rebuild", "--dry-run", "--json"))
    assert report["events"] == len(SCENARIO) + len(EXTRA)
    assert report["differences"] == []


def test_block_makes_a_value_link_nothing(graph: None, cli: Any, settings: Settings) -> None:
    assert cli("identity", "block", "email:shared@example.nl", "--reason", "family").exit_code == 0
    with Producer(settings) as producer:
        producer.send_many([
            {"messageId": f"shared-{i}", "type": "identify", "channel": "web", "userId": f"u-s{i}",
             "timestamp": "2026-03-05T08:00:00Z", "identifiers": {"email": "shared@example.nl"}}
            for i in range(2)
        ])  # fmt: skip
    runner = BatchRunner(settings, IdentityProcessor(settings))
    runner.run(records_of(settings, settings.topic("touchpoints.web")))
    runner.close()
    a = js(cli("identity", "lookup", "user_id:u-s0", "--json"))
    b = js(cli("identity", "lookup", "user_id:u-s1", "--json"))
    assert a["customer_id"] != b["customer_id"]
    assert cli("identity", "lookup", "email:shared@example.nl").exit_code == 3
