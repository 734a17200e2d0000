"""Generated omnichannel traffic through real identity, journey and actions workers,
checked against the batch reference: the pure engine over all events, grouped by the
pure identity rebuild, at the processor's final watermark.

Traffic is produced in chunks of ~5 days of delivery time with the pipeline drained
in between, and the rules use ``lateness: 9d`` (> the generator's 3-day maximum
delivery delay + one chunk): so every cancelling purchase is applied before the
watermark can pass the trigger it cancels. What the stream can still not know at
decision time is an identity merge whose linking event comes later; decisions that
depend on one may differ from the reference, and are counted and bounded.

The actions worker is SIGKILLed mid-chunk twice and restarted: the decisions must
still be exactly one per trigger, and every fired action on ``cdp.actions`` (at least
once there, de-duplicated by ``action_id``).
"""

from __future__ import annotations

import random
import time
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from cdp.activation.engine import FIRED, Identification, marketing_consent, reference
from cdp.activation.rules import DEFAULT_PATH, ActionRules
from cdp.config import Settings
from cdp.events import parse_object
from cdp.generate import generate
from cdp.identity.rules import MergeRules
from cdp.kafka.producer import Producer
from tests.integration.test_generated_traffic import group_by_customer
from tests.integration.workers import Workers

CUSTOMERS, DAYS, SEED, CHUNKS = 200, 30, 7, 6
KILL_AFTER_CHUNKS = (1, 3)


def test_generated_traffic_matches_the_reference(
    settings: Settings, topics: dict[str, str], workers: Workers, db: Any, consume: Any,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    data = yaml.safe_load(DEFAULT_PATH.read_text())
    data["defaults"]["lateness"] = "9d"
    path = tmp_path / "actions.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("CDP_ACTIONS_RULES", str(path))
    rules = ActionRules.load(path)

    gen = generate(CUSTOMERS, DAYS, SEED)
    events = list(gen.events())
    names = ["identity", "journey", "actions"]
    procs = {name: workers.start(name) for name in names}
    size = len(events) // CHUNKS + 1
    rng = random.Random(SEED)
    kills = 0
    for chunk, i in enumerate(range(0, len(events), size)):
        with Producer(settings, source="generator") as producer:
            producer.send_many(events[i : i + size])
        if chunk in KILL_AFTER_CHUNKS:
            time.sleep(rng.uniform(2.0, 6.0))  # mid-chunk: some batches applied, some not
            workers.kill(procs["actions"])
            procs["actions"] = workers.start("actions")
            kills += 1
        workers.wait_drained(names, timeout=180)

    (raw_wm,) = db.execute(
        "SELECT event_time FROM watermarks WHERE consumer = 'actions'"
    ).fetchone()
    watermark = raw_wm - rules.lateness
    ident = Identification(MergeRules.load(), settings.default_phone_region)
    expected = {d.action_id: d for d in reference(group_by_customer(settings, events)[1], watermark,
                                                  rules, ident)}  # fmt: skip
    got = dict(db.execute("SELECT action_id, outcome FROM activation_actions").fetchall())

    # every due trigger decided exactly once, none pending that is due
    assert set(got) == set(expected)
    assert db.execute(
        "SELECT count(*) FROM activation_timers WHERE due_at <= %s", (watermark,)
    ).fetchone() == (0,)
    # every fired action on the topic, none that was not fired; a repeat is possible
    # only from a kill between commit and publish (consumers de-duplicate by action_id)
    msgs = [orjson.loads(m.value()) for m in consume(settings.topic("actions"))]
    on_topic = Counter(m["action_id"] for m in msgs)
    assert set(on_topic) == {a for a, o in got.items() if o == FIRED}
    repeats = sum(n - 1 for n in on_topic.values())
    assert kills == len(KILL_AFTER_CHUNKS)
    assert repeats == 0 or kills > 0

    # outcomes agree with the reference except where a later identity merge changed
    # who the customer was (bounded); the hard guarantees hold without exception
    differ = {a: (got[a], expected[a].outcome) for a in got if got[a] != expected[a].outcome}
    kinds = Counter(differ.values())
    fired = [d for d in expected.values() if d.outcome == FIRED]
    assert len(fired) > 20, "the scenario exercises the rules"
    assert len(differ) <= 0.05 * len(expected), (len(differ), len(expected), kinds)

    # no offer to a person who said no; none when the person bought within the hour
    person_consent: dict[str, bool] = {}
    purchases: dict[str, list[Any]] = defaultdict(list)
    for doc in events:
        person = gen.event_person(doc["messageId"])
        stated = marketing_consent(doc.get("context") or {})
        if stated is not None:
            person_consent[person] = stated
        if doc.get("event") == "Order Completed":
            purchases[person].append(parse_object(doc).timestamp)
    triggers = {d["messageId"]: d for d in events}
    for m in msgs:
        if m["rule"] != "abandoned_cart":
            continue
        person = gen.event_person(m["trigger"]["message_id"])
        assert person_consent.get(person) is not False
        at = parse_object(triggers[m["trigger"]["message_id"]]).timestamp
        assert not any(at < p <= at + timedelta(hours=1) for p in purchases[person]), m
    print(f"decided {len(got)}, fired {len(on_topic)}, differ {dict(kinds)},"
          f" kills {kills}, repeats on the topic {repeats}")  # fmt: skip
