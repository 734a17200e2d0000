"""`cdp identity forget`: afterwards no store holds the person's plaintext or their
identifier hashes, and their future events are dropped."""

from __future__ import annotations

from collections import Counter
from typing import Any

import duckdb
import orjson
import pytest

from cdp.config import Settings
from cdp.errors import KafkaError
from cdp.identity.forget_topics import _Eraser
from cdp.identity.queries import IdentityQueries
from cdp.kafka.producer import Producer
from cdp.kafka.reader import read_topic
from cdp.lake.layout import lake_glob
from cdp.pipeline.deadletter import decode
from cdp.pipeline.records import RESTORED_HEADER
from tests.integration.test_e2e import SCENARIO
from tests.integration.workers import Workers

PROCESSORS = ["identity", "journey", "archive", "actions"]

ANN = ["email:ann@example.nl", "user_id:u-1", "anonymous_id:a-1", "loyalty_card:6012 3456"]
PLAIN = ["ann@example.nl", "Ann@Example.NL", "60123456", "6012 3456", "6012-3456"]


def table_names(db: Any) -> list[str]:
    return [
        r[0]
        for r in db.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
    ]


def everything_in_postgres(db: Any) -> str:
    return "\n".join(repr(db.execute(f'SELECT * FROM "{t}"').fetchall()) for t in table_names(db))


def where(db: Any, needle: str) -> list[str]:
    """The tables whose rows mention ``needle`` (for the failure message)."""
    return [
        t for t in table_names(db) if needle in repr(db.execute(f'SELECT * FROM "{t}"').fetchall())
    ]


def everything_in_the_lake(settings: Settings) -> str:
    return repr(
        duckdb.sql(f"SELECT * FROM read_parquet('{lake_glob(settings.lake_path)}')").fetchall()
    )


def everything_on_kafka(settings: Settings, topics: dict[str, str]) -> str:
    """Every key, value and header on every cdp topic, dead letters' raw bytes decoded."""
    out = []
    for topic in topics:
        for msg in read_topic(settings, topic):
            out += [repr(msg.key()), repr(msg.value()), repr(msg.headers())]
            if topic == settings.topic("deadletter"):
                doc = decode(msg.value())
                out += [repr(doc["raw"]), repr(doc["key"])]
    return "\n".join(out)


def her_customer_ids(db: Any, customer: str) -> list[str]:
    """Her customer id and the ids merged into it: an event archived before a merge
    (s1 read before l1 links the card to her email) carries a former id."""
    former = db.execute("SELECT old_id FROM customer_redirects WHERE customer_id = %s",
                        (customer,)).fetchall()  # fmt: skip
    return [customer, *(r[0] for r in former)]


def others_state(db: Any, settings: Settings, customer: str) -> tuple[Any, ...]:
    """Everyone else's journeys, identities and lake rows."""
    hers = her_customer_ids(db, customer)
    journeys = db.execute(
        "SELECT customer_id, stage, purchase_count, cart FROM journey"
        " WHERE customer_id <> ALL(%s) ORDER BY 1",
        (hers,),
    ).fetchall()
    ids = db.execute(
        "SELECT node_id, customer_id FROM identities WHERE customer_id <> ALL(%s) ORDER BY 1",
        (hers,),
    ).fetchall()
    listed = ", ".join(f"'{c}'" for c in hers)
    lake = duckdb.sql(f"SELECT message_id, customer_id FROM read_parquet("
                      f"'{lake_glob(settings.lake_path)}') WHERE customer_id NOT IN ({listed})"
                      " ORDER BY 1").fetchall()  # fmt: skip
    return journeys, ids, lake


ANN_POISON = b'{"messageId": "bad-ann", "channel": "web", "identifiers": {"email": "ann@example.nl"'
BOB_POISON = b'{"messageId": "bad-bob", "channel": "web", "identifiers": {"email": "bob@example.nl"'


def test_forget_leaves_no_trace_and_suppresses(
    settings: Settings, topics: dict[str, str], workers: Workers, db: Any, cli: Any
) -> None:
    for name in PROCESSORS:
        workers.start(name)
    card_registered = next(e for e in SCENARIO if e["messageId"] == "l1")
    # her store purchase is archived before her card is linked to her email (a merge)
    with Producer(settings) as producer:
        producer.send_many([e for e in SCENARIO if e is not card_registered])
        web = settings.topic("touchpoints.web")
        producer.send_raw(web, b"email:ann@example.nl", ANN_POISON)  # dead-lettered
        producer.send_raw(web, b"email:bob@example.nl", BOB_POISON)
    workers.wait_drained(PROCESSORS)
    with Producer(settings) as producer:
        producer.send(card_registered)
    workers.wait_drained(PROCESSORS)
    queries = IdentityQueries(db, settings)
    hashes = [queries.node_id(spec) for spec in ANN]
    customer = queries.customer_for(ANN[0])
    assert customer is not None and all(hashes)
    assert len(her_customer_ids(db, customer)) == 2, "the lake holds a former id of hers"
    before_pg, before_lake = everything_in_postgres(db), everything_in_the_lake(settings)
    assert customer in before_pg and customer in before_lake  # the search can find things
    held = db.execute("SELECT count(*) FROM activation_profiles WHERE customer_id = %s",
                      (customer,)).fetchone()  # fmt: skip
    assert held == (1,), "activation knows her too"
    kafka = everything_on_kafka(settings, topics)
    assert "ann@example.nl" in kafka and customer in kafka and "bad-bob" in kafka
    others = others_state(db, settings, customer)

    result = cli("identity", "forget", ANN[0], "--yes", "--json")
    assert result.exit_code == 0, result.output
    summary = orjson.loads(result.stdout)
    assert summary["identifiers"] == 4 and summary["lake_rows"] >= 4
    assert summary["topics"]["erased"] >= len(SCENARIO)  # raw + resolved + dead letter

    pg, lake = everything_in_postgres(db), everything_in_the_lake(settings)
    for needle in [*PLAIN, *(h for h in hashes if h), *summary["customer_ids"]]:
        assert needle not in pg, f"{needle} still in PostgreSQL: {where(db, needle)}"
        assert needle not in lake, f"{needle} still in the lake"
    assert db.execute("SELECT count(*) FROM identities").fetchone()[0] > 0
    kafka = everything_on_kafka(settings, topics)
    for needle in [*PLAIN, *(h for h in hashes if h), *summary["customer_ids"], "bad-ann"]:
        assert needle not in kafka, f"{needle} still on Kafka"
    assert "bad-bob" in kafka and "kiosk-7" in kafka, "other people's records are kept"
    assert summary["topics"]["restored"] > 0

    # the copies of other people's records written back are not applied a second time
    workers.wait_drained(PROCESSORS)
    assert others_state(db, settings, customer) == others

    # future events with any of her identifiers are dropped
    with Producer(settings) as producer:
        producer.send({"messageId": "after-1", "type": "track", "event": "Product Viewed",
                       "channel": "web", "timestamp": "2026-04-01T10:00:00Z",
                       "identifiers": {"email": "ANN@example.nl"}})  # fmt: skip
    workers.wait_drained(PROCESSORS)
    assert queries.customer_for(ANN[0]) is None
    assert "after-1" not in everything_in_the_lake(settings)


def restored_origins(settings: Settings, topics: dict[str, str]) -> Counter[str]:
    """How many copies of each original record the topics hold."""
    return Counter(
        bytes(value).decode()
        for topic in topics
        for msg in read_topic(settings, topic)
        for name, value in msg.headers() or ()
        if name == RESTORED_HEADER
    )


def test_a_forget_stopped_before_its_delete_is_finished_by_the_next_one(
    settings: Settings,
    topics: dict[str, str],
    workers: Workers,
    db: Any,
    cli: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in PROCESSORS:
        workers.start(name)
    with Producer(settings) as producer:
        producer.send_many(SCENARIO)
        web = settings.topic("touchpoints.web")  # the dead letter of someone else first
        producer.send_raw(web, b"email:bob@example.nl", BOB_POISON)
        producer.send_raw(web, b"email:ann@example.nl", ANN_POISON)
    workers.wait_drained(PROCESSORS)
    customer = IdentityQueries(db, settings).customer_for(ANN[0])
    assert customer is not None
    others = others_state(db, settings, customer)
    delete_prefix = _Eraser._delete_prefix

    def broker_gone_after_a_copy(self: _Eraser, *args: Any) -> None:
        if self.result.restored:
            raise KafkaError("the broker went away")
        delete_prefix(self, *args)

    with monkeypatch.context() as patch:  # others' records copied, their prefix kept
        patch.setattr(_Eraser, "_delete_prefix", broker_gone_after_a_copy)
        stopped = cli("identity", "forget", ANN[0], "--yes", "--json")
    assert stopped.exit_code == 3, stopped.output
    copied_once = restored_origins(settings, topics)
    assert copied_once and set(copied_once.values()) == {1}
    assert "ann@example.nl" in everything_on_kafka(settings, topics)
    assert IdentityQueries(db, settings).customer_for(ANN[0]) == customer  # still findable

    result = cli("identity", "forget", ANN[0], "--yes", "--json")
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout)["topics"]["restored"] == 0  # the copies were there
    assert restored_origins(settings, topics) == copied_once
    kafka = everything_on_kafka(settings, topics)
    assert "ann@example.nl" not in kafka and customer not in kafka
    workers.wait_drained(PROCESSORS)
    assert others_state(db, settings, customer) == others
