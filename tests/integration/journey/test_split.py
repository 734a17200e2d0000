"""`cdp identity split` separates journey summaries again.

Ann shops on the web (an anonymous id, then her email); Bob buys in the store with his
loyalty card. Bob registers his card with Ann's email (the family address): identity
merges the two, and the journey row of the merged customer combines both summaries.
After `cdp identity split MERGE_ID` each customer's journey row equals the batch
reference (cdp/journey/reference.py) over that customer's own events: stage, cart,
purchase count, the whole summary. Events already resolved to the merged customer but
applied by the journey only after the split land on the customer their identifier
belongs to, and a merge record still in flight when the split happens folds nothing.
Activation's rows follow their events too (Bob's purchase, which cancels offers).
Real identity, journey and actions worker processes, the real broker and database.
"""

from __future__ import annotations

import signal
from collections.abc import Iterable
from typing import Any

import orjson
import psycopg

from cdp.config import Settings
from cdp.events import Event
from cdp.identity.queries import IdentityQueries
from cdp.journey import JourneyRules, Summary, reference_summaries, stage_of
from cdp.kafka.producer import Producer
from tests.integration.test_e2e import ev
from tests.integration.workers import Workers

ANON = {"anonymousId": "a-ann"}
CARD = {"identifiers": {"loyalty_card": "7001 0001"}}
ANN = [
    ev("a1", "web", "Product Viewed", "01T10:00:00", **ANON, properties={"product_id": "sku-1"}),
    {"messageId": "a2", "type": "identify", "channel": "web", "anonymousId": "a-ann",
     "timestamp": "2026-03-01T10:05:00+00:00", "identifiers": {"email": "family@example.nl"}},
    ev("a3", "web", "Product Added", "05T10:00:00", **ANON,
       properties={"product_id": "sku-1", "price": 30.0, "quantity": 1, "name": "Shoes"}),
]  # fmt: skip
BOB = [
    ev("b1", "store", "Store Visited", "02T09:00:00", **CARD),
    ev("b2", "store", "Order Completed", "02T09:30:00", **CARD,
       properties={"order_id": "o-1", "revenue": 50.0}),
]  # fmt: skip
# Bob registers his card with the family email: the one event that merges the two
LINK = ev("b3", "loyalty", "Loyalty Card Registered", "03T12:00:00",
          identifiers={"loyalty_card": "7001-0001", "email": "Family@Example.nl"})  # fmt: skip
# resolved while the two are merged, applied by the journey only after the split
ANN_LATER = ev("a4", "web", "Order Completed", "10T10:00:00", **ANON,
               properties={"order_id": "o-2", "revenue": 20.0})  # fmt: skip
BOB_LATER = ev("b4", "service", "Support Ticket Opened", "11T08:00:00", **CARD)
AFTER = [  # sent once the split is done
    ev("a5", "web", "Product Added", "12T10:00:00", **ANON,
       properties={"product_id": "sku-2", "price": 12.5, "quantity": 2}),
    ev("b5", "store", "Order Completed", "12T11:00:00", **CARD,
       properties={"order_id": "o-3", "revenue": 70.0}),
]  # fmt: skip

RULES = JourneyRules.load()


def reference(events: Iterable[dict[str, Any]]) -> Summary:
    return reference_summaries({"c": [Event.model_validate(e) for e in events]}, RULES)["c"]


def journey_row(db: psycopg.Connection[Any], cid: str) -> dict[str, Any] | None:
    row = db.execute(
        "SELECT stage, stage_since, stage_message_id, summary, cart, purchase_count"
        " FROM journey WHERE customer_id = %s",
        (cid,),
    ).fetchone()
    if row is None:
        return None
    stage, since, mid, summary, cart, purchases = row
    return {"stage": stage, "since": since, "message_id": mid, "summary": summary,
            "cart": cart, "purchase_count": purchases}  # fmt: skip


def assert_matches(db: psycopg.Connection[Any], cid: str, events: list[dict[str, Any]]) -> None:
    """The customer's journey row is the reference over exactly ``events``."""
    row = journey_row(db, cid)
    assert row is not None, f"{cid} has no journey row"
    expected = reference(events)
    state = stage_of(expected, RULES)
    got = (row["stage"], row["since"], row["message_id"], row["cart"], row["purchase_count"])
    assert got == (
        state.stage, state.since, state.message_id, expected.cart(), expected.purchase_count
    ), [e["messageId"] for e in events]  # fmt: skip
    assert Summary.from_json(row["summary"]) == expected


def customers(db: psycopg.Connection[Any], settings: Settings) -> tuple[str, str]:
    q = IdentityQueries(db, settings)
    ann, bob = q.customer_for("anonymous_id:a-ann"), q.customer_for("loyalty_card:70010001")
    assert ann is not None and bob is not None
    return ann, bob


def send(settings: Settings, events: list[dict[str, Any]]) -> None:
    with Producer(settings, source="test") as producer:
        producer.send_many(events)


def the_merge(db: psycopg.Connection[Any]) -> int:
    rows = db.execute("SELECT merge_id, message_id FROM merges WHERE split_at IS NULL").fetchall()
    assert [mid for _, mid in rows] == ["b3"], rows
    return int(rows[0][0])


def cancel_owner(db: psycopg.Connection[Any], message_id: str) -> str | None:
    row = db.execute(
        "SELECT customer_id FROM activation_cancels WHERE message_id = %s", (message_id,)
    ).fetchone()
    return None if row is None else str(row[0])


def split(cli: Any, merge_id: int) -> dict[str, Any]:
    result = cli("identity", "split", str(merge_id), "--json")
    assert result.exit_code == 0, result.output
    out: dict[str, Any] = orjson.loads(result.stdout)
    return out


def test_split_separates_the_journeys_again(
    settings: Settings, topics: dict[str, str], workers: Workers, db: Any, cli: Any
) -> None:
    workers.start("identity")
    journey = workers.start("journey")
    workers.start("actions")
    send(settings, ANN + BOB)
    workers.wait_drained(["identity", "journey", "actions"])
    ann, bob = customers(db, settings)
    assert ann != bob
    assert_matches(db, ann, ANN)
    assert_matches(db, bob, BOB)

    # the shared email merges them: one journey row with the combined summary
    send(settings, [LINK])
    workers.wait_drained(["identity", "journey", "actions"])
    # node ids start with their type, so Ann's anonymous_id is the merged cluster's
    # smallest identifier: the merged customer keeps her id, Bob's id is redirected
    assert customers(db, settings) == (ann, ann)
    assert_matches(db, ann, [*ANN, *BOB, LINK])
    row = journey_row(db, ann)
    assert row is not None and row["stage"] == "loyalty" and row["purchase_count"] == 1
    assert [line["product_id"] for line in row["cart"]] == ["sku-1"]
    assert journey_row(db, bob) is None
    merge_id = the_merge(db)

    # two more events are resolved to the merged customer (Ann's id), but the journey
    # applies them only after the split: Bob's must land on Bob by its identifier
    workers.kill(journey, signal.SIGTERM)
    send(settings, [ANN_LATER, BOB_LATER])
    workers.wait_drained(["identity", "actions"])
    # activation folded Bob into the merged customer too: his purchase (an event that
    # cancels offers) is on Ann's id
    assert cancel_owner(db, "b2") == ann
    pending = db.execute(
        "SELECT count(*) FROM identities WHERE customer_id = %s", (ann,)
    ).fetchone()
    assert pending == (3,), "still merged when the events were resolved"

    out = split(cli, merge_id)
    assert sorted(out["customers"]) == sorted([ann, bob])
    assert out["journey"]["consistent"] is True
    assert out["journey"]["events"] == len(ANN + BOB) + 1
    assert out["journey"]["moved"] == 1  # b3 was applied to the merged customer
    assert out["journey"]["deleted"] == []
    assert customers(db, settings) == (ann, bob)
    # activation's rows follow their events: Bob's purchase cancels Bob's offers again
    assert cancel_owner(db, "b2") == bob
    assert out["activation"]["activation_cancels"] == 1
    # recomputed in the split's transaction from the events applied so far
    assert_matches(db, ann, ANN)
    assert_matches(db, bob, [*BOB, LINK])

    # the stage changes the split caused are recorded at the watermark with the split
    # as their cause, after the history, which is kept
    def last_two(cid: str) -> list[tuple[Any, ...]]:
        return db.execute(
            "SELECT from_stage, to_stage, event_time, message_id FROM transitions"
            " WHERE customer_id = %s ORDER BY transition_id DESC LIMIT 2",
            (cid,),
        ).fetchall()[::-1]

    (wm,) = db.execute("SELECT event_time FROM watermarks WHERE consumer = 'journey'").fetchone()
    cause = f"split:{merge_id}"
    # Ann: the merge made her loyal (Bob's card registration), the split undoes it
    assert [t[:2] for t in last_two(ann)] == [("consideration", "loyalty"),
                                              ("loyalty", "consideration")]  # fmt: skip
    assert last_two(ann)[0][3] == "b3" and last_two(ann)[1][2:] == (wm, cause)
    # Bob: his history ended in decision when he was merged away; b3 is his again
    assert last_two(bob)[1] == ("decision", "loyalty", wm, cause)
    assert out["journey"]["transitions"] == 2

    # splitting again is refused and changes nothing
    before = (journey_row(db, ann), journey_row(db, bob))
    again = cli("identity", "split", str(merge_id), "--json")
    assert again.exit_code != 0 and "already split" in again.output
    assert (journey_row(db, ann), journey_row(db, bob)) == before

    # the journey applies the in-flight events on the customers their identifiers
    # belong to now, and new events keep them apart
    workers.start("journey")
    send(settings, AFTER)
    workers.wait_drained(["identity", "journey", "actions"])
    assert customers(db, settings) == (ann, bob)
    assert_matches(db, ann, [*ANN, ANN_LATER, AFTER[0]])
    assert_matches(db, bob, [*BOB, LINK, BOB_LATER, AFTER[1]])
    stored = dict(db.execute("SELECT message_id, customer_id FROM journey_events").fetchall())
    assert stored == {
        **{e["messageId"]: ann for e in [*ANN, ANN_LATER, AFTER[0]]},
        **{e["messageId"]: bob for e in [*BOB, LINK, BOB_LATER, AFTER[1]]},
    }


def test_split_before_the_journey_applied_the_merge(
    settings: Settings, topics: dict[str, str], workers: Workers, db: Any, cli: Any
) -> None:
    workers.start("identity")
    journey = workers.start("journey")
    workers.start("actions")
    send(settings, ANN + BOB)
    workers.wait_drained(["identity", "journey", "actions"])
    ann, bob = customers(db, settings)

    # merged and split while the journey is down: the merge record and the linking
    # event are still waiting on cdp.touchpoints.resolved when the split happens
    workers.kill(journey, signal.SIGTERM)
    send(settings, [LINK])
    workers.wait_drained(["identity"])
    out = split(cli, the_merge(db))
    assert out["journey"]["consistent"] is True and out["journey"]["moved"] == 0
    assert_matches(db, ann, ANN)
    assert_matches(db, bob, BOB)

    workers.start("journey")
    workers.wait_drained(["identity", "journey"])
    assert customers(db, settings) == (ann, bob)
    assert_matches(db, ann, ANN)
    assert_matches(db, bob, [*BOB, LINK])
