"""Generated omnichannel traffic through real worker processes, checked against the
generator's truth and against the pure batch reference (the same code folded over
the whole set of events in event-time order).

- every real person maps to one customer, and no customer holds two persons (except
  where a merge limit recorded a conflict);
- the kiosk device and junk values link nobody;
- identical clusters, customer ids and journey stages with 1 and 3 identity workers,
  emission order or shuffled + duplicated input.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter, defaultdict
from typing import Any

import pytest

from cdp.config import Settings
from cdp.events import Event, parse_object
from cdp.generate import generate
from cdp.identity.graph import observation_from_event, rebuild
from cdp.identity.hashing import IdentifierHasher
from cdp.identity.model import rank
from cdp.identity.normalize import normalize
from cdp.identity.queries import IdentityQueries
from cdp.identity.rules import MergeRules, resolve_identifier
from cdp.journey import JourneyRules, reference_stages
from cdp.kafka.producer import Producer
from tests.integration.workers import Workers

CUSTOMERS, DAYS, SEED = 250, 60, 11


@pytest.fixture(scope="module")
def traffic() -> tuple[list[dict[str, Any]], Any]:
    gen = generate(CUSTOMERS, DAYS, SEED)
    events = list(gen.events())
    return events, gen


def group_by_customer(
    settings: Settings, events: list[dict[str, Any]]
) -> tuple[Any, dict[str, list[Event]]]:
    """The pure identity rebuild over ``events`` and each customer's events, attributed
    by their strongest identifier as the identity processor does. No I/O."""
    rules = MergeRules.load()
    hasher = IdentifierHasher(settings.identity_secret.get_secret_value().encode())
    parsed: dict[str, Event] = {}
    for doc in events:
        ev = parse_object(doc)
        parsed[ev.messageId] = ev
    obs = {
        mid: observation_from_event(ev, rules, hasher, settings.default_phone_region)
        for mid, ev in parsed.items()
    }
    graph = rebuild(obs.values(), rules=rules)
    by_customer: dict[str, list[Event]] = defaultdict(list)
    for mid, ev in parsed.items():
        nodes = obs[mid].nodes or obs[mid].alias_previous or ()
        if nodes:
            strongest = min(nodes, key=lambda n: (rank(n.id_type), n.node_id))
            cid = graph.customer_of(strongest.node_id)
            assert cid is not None
            by_customer[cid].append(ev)
    return graph, by_customer


def reference(
    settings: Settings, events: list[dict[str, Any]]
) -> tuple[dict[str, str], dict[str, Any]]:
    """node_id → customer id and customer id → stage, computed without any I/O."""
    graph, by_customer = group_by_customer(settings, events)
    stages = reference_stages(by_customer, JourneyRules.load())
    nodes = {n.node_id: cid for cid, ns in graph.clusters().items() for n in ns}
    return nodes, stages


def run_pipeline(
    settings: Settings, workers: Workers, events: list[dict[str, Any]], n_workers: int
) -> None:
    for _ in range(n_workers):  # n identity and n journey worker processes
        workers.start("identity")
        workers.start("journey")
    with Producer(settings, source="generator") as producer:
        producer.send_many(events)
    workers.wait_drained(["identity", "journey"], timeout=300)


def check_against_truth(settings: Settings, db: Any, gen: Any) -> None:
    truth: dict[str, str] = gen.truth()
    found = IdentityQueries(db, settings).resolve_many(truth)
    customers_of: dict[str, set[str]] = defaultdict(set)
    persons_of: dict[str, set[str]] = defaultdict(set)
    for spec, person in truth.items():
        cid = found[spec]
        if cid is None:
            continue  # a value that normalises to nothing usable (checked below)
        customers_of[person].add(cid)
        persons_of[cid].add(person)
    # Identifiers the rules deliberately ignore: malformed values (an invalid phone
    # number) and types that link nothing on the channels they were seen on (a
    # device used only in the store).
    rules = MergeRules.load()
    unresolved = [
        s for s, c in found.items()
        if c is None
        and normalize(s.split(":")[0], s.split(":", 1)[1], settings.default_phone_region)
        is not None
        and s.split(":")[0] not in rules.non_linking
    ]  # fmt: skip
    assert unresolved == [], unresolved[:10]
    conflicted = {r[0] for r in db.execute("SELECT customer_a FROM conflicts")} | {
        r[0] for r in db.execute("SELECT customer_b FROM conflicts")
    }
    # A person can only be one customer where their own events link their
    # identifiers: count the evidence components per person with a plain union-find
    # over co-occurring identifiers (independent of the graph code).
    components = evidence_components(settings, gen)
    split_persons = [
        p for p, cs in customers_of.items()
        if len(cs) > components[p] and not cs & conflicted
    ]  # fmt: skip
    blobs = [c for c, ps in persons_of.items() if len(ps) > 1]
    print(
        f"\npersons={len(customers_of)} customers={len(persons_of)} "
        f"persons_fully_linked={sum(1 for p, cs in customers_of.items() if len(cs) == 1)} "
        f"split_persons={len(split_persons)} blob_customers={len(blobs)} "
        f"conflicts={len(conflicted)}"
    )
    assert blobs == [], "a customer holds two real persons"
    assert split_persons == [], "a person is spread over customers without a conflict"
    assert db.execute(
        "SELECT count(*) FROM identities WHERE id_type = 'device_id' AND first_channel = 'store'"
    ).fetchone() == (0,), "the kiosk device links nothing"


def evidence_components(settings: Settings, gen: Any) -> dict[str, int]:
    """person → number of connected groups of their usable identifiers."""
    rules = MergeRules.load()
    hasher = IdentifierHasher(b"evidence")
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    owner: dict[str, str] = {}
    persons = gen.event_persons()
    for doc in gen.events():
        ev = parse_object(doc)
        pairs = ev.identifier_pairs()
        if ev.type == "alias" and ev.previousId:
            pairs.append(("alias_previous", ev.previousId))
        nodes = []
        for id_type, raw in pairs:
            if id_type == "alias_previous":
                nodes.append(f"alias:{raw}")
                continue
            node = resolve_identifier(id_type, raw, ev.channel.value, rules, hasher,
                                      settings.default_phone_region)  # fmt: skip
            if not isinstance(node, str):
                nodes.append(node.node_id)
        for n in nodes:
            owner.setdefault(n, persons[ev.messageId])
            # previousId is an anonymous or user id seen elsewhere under its own type
            if n.startswith("alias:"):
                raw = n.split(":", 1)[1]
                for t in ("anonymous_id", "user_id"):
                    parent.setdefault(find(n), find(n))
                    parent[find(n)] = find(hasher.node_id(t, raw))
        for a, b in itertools.pairwise(nodes):
            parent[find(a)] = find(b)
    groups: dict[str, set[str]] = defaultdict(set)
    for node, person in owner.items():
        if not node.startswith("alias:"):
            groups[person].add(find(node))
    return {p: len(g) for p, g in groups.items()}


def check_against_reference(settings: Settings, db: Any, events: list[dict[str, Any]]) -> None:
    nodes, stages = reference(settings, events)
    live = dict(db.execute("SELECT node_id, customer_id FROM identities").fetchall())
    assert live == nodes, "stream graph differs from the batch reference"
    live_stages = {
        cid: (stage, since)
        for cid, stage, since in db.execute("SELECT customer_id, stage, stage_since FROM journey")
    }
    expected = {cid: (s.stage, s.since) for cid, s in stages.items()}
    diff = {c for c in set(live_stages) | set(expected) if live_stages.get(c) != expected.get(c)}
    assert not diff, [(c, live_stages.get(c), expected.get(c)) for c in sorted(diff)[:5]]
    print(f"stages: {dict(Counter(s for s, _ in live_stages.values()))}")


def test_one_worker_in_emission_order(
    settings: Settings, topics: dict[str, str], workers: Workers, db: Any, traffic: Any
) -> None:
    events, gen = traffic
    run_pipeline(settings, workers, events, n_workers=1)
    check_against_truth(settings, db, gen)
    check_against_reference(settings, db, events)


def test_three_workers_shuffled_and_duplicated(
    settings: Settings, topics: dict[str, str], workers: Workers, db: Any, traffic: Any
) -> None:
    events, gen = traffic
    rng = random.Random(5)
    mixed = events + rng.sample(events, len(events) // 10)  # 10% more duplicates
    rng.shuffle(mixed)
    run_pipeline(settings, workers, mixed, n_workers=3)
    check_against_truth(settings, db, gen)
    check_against_reference(settings, db, events)
