"""Hypothesis properties: without conflicts the clusters are the connected components
of the observations, whatever the order, duplicates or split into graphs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from cdp.identity import IdentityGraph, MergeRules, Node, Observation, customer_id_for, rebuild

from .helpers import T0, UNLIMITED, components, node

POOLS: dict[str, list[Node]] = {
    "user_id": [node("user_id", f"U{i}") for i in range(5)],
    "loyalty_card": [node("loyalty_card", str(1000 + i)) for i in range(4)],
    "email": [node("email", f"e{i}@x.nl") for i in range(6)],
    "phone": [node("phone", f"+3161234567{i}") for i in range(4)],
    "device_id": [node("device_id", f"d{i}") for i in range(4)],
    "anonymous_id": [node("anonymous_id", f"a{i}") for i in range(8)],
    "crm_id": [node("crm_id", f"c{i}") for i in range(3)],
}
ALL_NODES = [n for pool in POOLS.values() for n in pool]
# previousId values are anonymous ids that are never user ids, so an alias always
# resolves to the anonymous_id node whatever the order (see docs/identity.md).
ALIASES = [(node("user_id", f"a{i}"), node("anonymous_id", f"a{i}")) for i in range(8)]
SMALL_LIMITS = MergeRules(limits={"user_id": 1, "loyalty_card": 1, "email": 2, "phone": 2})


def _build(raw: list[tuple[list[int], int, int]]) -> list[Observation]:
    return [
        Observation(
            f"m{i:03d}",
            T0 + timedelta(minutes=minute),
            "web",
            tuple(ALL_NODES[k] for k in picks),
            ALIASES[alias] if alias >= 0 else None,
        )
        for i, (picks, alias, minute) in enumerate(raw)
    ]


# Indices rather than composite draws: generation dominates the runtime otherwise.
observation_lists = st.lists(
    st.tuples(
        st.lists(st.integers(0, len(ALL_NODES) - 1), max_size=4),
        st.integers(-4, len(ALIASES) - 1),  # negative: no alias (about a third)
        st.integers(0, 10),
    ),
    max_size=25,
).map(_build)


def as_edges(observations: Sequence[Observation]) -> list[Observation]:
    """The alias target made explicit, for the independent BFS reference."""
    return [
        Observation(o.message_id, o.event_time, o.channel, (*o.nodes, o.alias_previous[-1]))
        if o.alias_previous
        else o
        for o in observations
    ]


def apply_all(observations: Sequence[Observation], rules: MergeRules = UNLIMITED) -> IdentityGraph:
    graph = IdentityGraph(rules)
    for o in observations:
        graph.apply(o)
    return graph


def reordered(data: st.DataObject, observations: list[Observation]) -> list[Observation]:
    extra = data.draw(st.lists(st.sampled_from(observations), max_size=10)) if observations else []
    return data.draw(st.permutations(observations + extra))


@settings(deadline=None, max_examples=200)
@given(st.data(), observation_lists)
def test_clusters_are_components_in_any_order(data: st.DataObject, obs: list[Observation]) -> None:
    expected = apply_all(obs).clusters()
    shuffled = reordered(data, obs)
    assert apply_all(shuffled).clusters() == expected  # same clusters, same customer ids
    assert set(expected.values()) == components(as_edges(obs))
    for customer_id, members in expected.items():
        assert customer_id == customer_id_for(min(n.node_id for n in members))


@settings(deadline=None, max_examples=200)
@given(st.data(), observation_lists)
def test_split_across_graphs_then_replayed(data: st.DataObject, obs: list[Observation]) -> None:
    expected = apply_all(obs).clusters()
    in_first = data.draw(st.lists(st.booleans(), min_size=len(obs), max_size=len(obs)))
    first = apply_all([o for o, f in zip(obs, in_first, strict=True) if f])
    second = apply_all([o for o, f in zip(obs, in_first, strict=True) if not f])
    # Replay: each cluster of the second graph is one observation for the first.
    for i, members in enumerate(second.clusters().values()):
        first.apply(Observation(f"replay-{i}", T0, "web", tuple(sorted(members))))
    assert first.clusters() == expected
    # Same through a stored snapshot (what the stream processor loads).
    snapshot = {k: list(v) for k, v in second.clusters().items()}
    restored = IdentityGraph.from_clusters(snapshot, UNLIMITED)
    for o in obs:
        if in_first[obs.index(o)]:
            restored.apply(o)
    assert restored.clusters() == expected


@settings(deadline=None, max_examples=200)
@given(st.data(), observation_lists)
def test_customer_of_stable_under_permutation(data: st.DataObject, obs: list[Observation]) -> None:
    a = apply_all(obs)
    b = apply_all(reordered(data, obs))
    for n in ALL_NODES:
        assert a.customer_of(n.node_id) == b.customer_of(n.node_id)


@settings(deadline=None, max_examples=200)
@given(observation_lists)
def test_limits_are_never_exceeded(obs: list[Observation]) -> None:
    graph = apply_all(obs, SMALL_LIMITS)
    for members in graph.clusters().values():
        for id_type, count in Counter(n.id_type for n in members).items():
            assert count <= SMALL_LIMITS.limit(id_type)


@settings(deadline=None, max_examples=200)
@given(st.data(), observation_lists)
def test_rebuild_is_deterministic_with_conflicts(
    data: st.DataObject, obs: list[Observation]
) -> None:
    expected = rebuild(obs, rules=SMALL_LIMITS).clusters()
    assert rebuild(reordered(data, obs), rules=SMALL_LIMITS).clusters() == expected


@settings(deadline=None, max_examples=200)
@given(st.data(), observation_lists)
def test_batches_on_loaded_subgraphs_equal_one_graph(
    data: st.DataObject, obs: list[Observation]
) -> None:
    """The stream processor's pattern (load touched clusters, apply a batch, store the
    result) matches one in-memory graph in the same order, conflicts included."""
    expected = apply_all(obs, SMALL_LIMITS).clusters()
    store: dict[str, frozenset[Node]] = {}
    start = 0
    while start < len(obs):
        size = data.draw(st.integers(1, 6))
        batch = obs[start : start + size]
        start += size
        owner = {n.node_id: cid for cid, members in store.items() for n in members}
        touched = {owner[i] for o in batch for i in o.touched_node_ids() if i in owner}
        graph = IdentityGraph.from_clusters({c: list(store[c]) for c in touched}, SMALL_LIMITS)
        for o in batch:
            graph.apply(o)
        for c in touched:
            del store[c]
        store.update(graph.clusters())
    assert store == expected
