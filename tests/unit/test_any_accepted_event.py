"""Any event the envelope accepts flows through the pure code of every processor
without an exception: identity's observation, the journey's summary, stage and flags,
the lake's row, activation's profile and triggers. A processor that raised on one
would stop on it at every redelivery (the envelope is the gate; times that cannot be
converted to UTC got through it once). Property values are drawn around the keys the
processors read, with any JSON type."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import orjson
import pyarrow as pa  # type: ignore[import-untyped]
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdp.activation.engine import (
    Profile,
    due_at,
    has_user_id_or_email,
    profile_of_event,
    triggers_of_event,
)
from cdp.activation.rules import ActionRules
from cdp.errors import ValidationError
from cdp.events import dump_event, parse_event, parse_object
from cdp.events.envelope import CHANNELS, KNOWN_EVENTS, LATEST_TIME
from cdp.identity.graph import observation_from_event
from cdp.identity.hashing import IdentifierHasher
from cdp.identity.mask import mask
from cdp.identity.normalize import normalize
from cdp.identity.rules import MergeRules
from cdp.journey import JourneyRules, Summary, flags, stage_of
from cdp.lake.rows import SCHEMA, analytics_consent, to_row

RULES = JourneyRules.default()
MERGE_RULES = MergeRules.load()
ACTION_RULES = ActionRules.load()
HASHER = IdentifierHasher(b"test-secret")

# keys some processor reads: everything else is carried along untouched
READ_KEYS = ["revenue", "total", "price", "quantity", "product_id", "sku", "name",
             "category", "order_id", "products", "currency", "analytics",
             "categoryPreferences", "consent", "email", "phone"]  # fmt: skip
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(READ_KEYS) | st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
objects = st.dictionaries(st.sampled_from(READ_KEYS) | st.text(max_size=6), values, max_size=5)
times = st.datetimes(timezones=st.timezones()).map(lambda t: t.isoformat())
ids = st.one_of(st.none(), st.text(max_size=30), st.sampled_from(["a@b.nl", "+31612345678"]))

envelopes = st.fixed_dictionaries(
    {
        "messageId": st.text(min_size=1, max_size=20),
        "type": st.sampled_from(["track", "identify", "page", "screen", "alias", "group"]),
        "channel": st.sampled_from(CHANNELS),
        "timestamp": times,
    },
    optional={
        "event": st.sampled_from(KNOWN_EVENTS) | st.text(max_size=20),
        "anonymousId": ids,
        "userId": ids,
        "previousId": ids,
        "identifiers": st.dictionaries(
            st.sampled_from(
                [
                    "email",
                    "phone",
                    "loyalty_card",
                    "device_id",
                    "cookie_id",
                    "pos_customer_id",
                    "other",
                ]
            ),
            ids,
            max_size=3,
        ),
        "sentAt": times,
        "properties": objects,
        "traits": objects,
        "context": objects | st.just({"consent": {"categoryPreferences": {"analytics": False}}}),
    },
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(envelopes)
def test_an_accepted_event_passes_every_processor(doc: dict[str, Any]) -> None:
    try:
        raw = dump_event(parse_object(doc))
    except ValidationError:
        return  # refused at the gate, with a reason: what must happen to the rest
    event = parse_event(raw)  # the wire form is accepted as well

    observation_from_event(event, MERGE_RULES, HASHER, "NL", Counter())
    for id_type, value in [*event.identifier_pairs(), ("alias", event.previousId or "")]:
        mask(id_type, normalize(id_type, value, "NL") or "")  # identity's sightings

    summary = Summary.from_event(event, RULES)
    both = Summary.combine(summary, Summary.from_event(event, RULES))
    assert Summary.from_json(orjson.loads(orjson.dumps(both.to_json()))).to_json() == both.to_json()
    stage_of(both, RULES)
    flags(both, min(event.timestamp + timedelta(days=365), LATEST_TIME), RULES)

    wire = orjson.loads(raw)  # what journey and archive read
    analytics_consent(wire)
    _, _, row = to_row("c-1", wire, 0, 0)
    pa.Table.from_pylist([row], schema=SCHEMA)

    profile = profile_of_event(event, ACTION_RULES, has_user_id_or_email)
    Profile.combine(profile, profile)
    for trigger in triggers_of_event("c-1", event, ACTION_RULES):
        due_at(ACTION_RULES.by_name[trigger.rule], trigger.at, ACTION_RULES)
