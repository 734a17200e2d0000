"""IdentityGraph.apply semantics: merges, winners, limits, kiosks, aliases, rebuild."""

from __future__ import annotations

import pytest

from cdp.identity import (
    LIMIT_EXCEEDED,
    GraphError,
    IdentityGraph,
    MergeRules,
    Node,
    customer_id_for,
    observation_from_event,
    rebuild,
)

from .helpers import HASHER, REGION, UNLIMITED, event, node, obs

EMAIL = node("email", "anna@x.nl")
PHONE = node("phone", "+31612345678")
ANON = node("anonymous_id", "a1")
ANON2 = node("anonymous_id", "a2")
USER = node("user_id", "U-1")
USER2 = node("user_id", "U-2")
CARD = node("loyalty_card", "1234")


def cid(*nodes: Node) -> str:
    return customer_id_for(min(n.node_id for n in nodes))


def test_empty_observation_has_no_customer() -> None:
    applied = IdentityGraph().apply(obs("m1"))
    assert applied.customer_id is None
    assert (applied.merges, applied.conflicts, applied.new_nodes) == ([], [], [])


def test_new_nodes_become_one_customer() -> None:
    graph = IdentityGraph()
    applied = graph.apply(obs("m1", EMAIL, ANON))
    assert applied.customer_id == cid(EMAIL, ANON)
    both = cid(EMAIL, ANON)
    assert sorted(applied.new_nodes) == sorted([(EMAIL, both), (ANON, both)])
    # No customer existed before, so nothing was merged away.
    assert applied.merges == []
    assert graph.clusters() == {cid(EMAIL, ANON): frozenset({EMAIL, ANON})}


def test_merge_of_existing_customers_records_evidence() -> None:
    graph = IdentityGraph()
    graph.apply(obs("m1", EMAIL, ANON))
    graph.apply(obs("m2", PHONE, ANON2))
    applied = graph.apply(obs("m3", EMAIL, PHONE, minute=5))
    (merge,) = applied.merges
    a, b = cid(EMAIL, ANON), cid(PHONE, ANON2)
    winner = cid(EMAIL, ANON, PHONE, ANON2)
    assert merge.winner == winner
    assert {merge.winner, merge.loser} == {a, b}
    assert merge.message_id == "m3"
    assert merge.linking_node_id in {EMAIL.node_id, PHONE.node_id}
    assert applied.new_nodes == []
    assert graph.customer_of(ANON2.node_id) == winner
    assert len(graph) == 1
    assert graph.clusters() == {winner: {EMAIL, ANON, PHONE, ANON2}}


def test_customer_is_cluster_of_strongest_node() -> None:
    graph = IdentityGraph()
    graph.apply(obs("m1", USER, EMAIL))
    graph.apply(obs("m2", USER2, PHONE))
    applied = graph.apply(obs("m3", EMAIL, PHONE))  # two user_ids: refused
    assert applied.merges == []
    (conflict,) = applied.conflicts
    assert conflict.id_type == "user_id"
    assert conflict.reason == LIMIT_EXCEEDED
    assert conflict.message_id == "m3"
    # email ranks above phone, so the event belongs to the email's customer
    assert applied.customer_id == graph.customer_of(EMAIL.node_id)


def test_limit_conflict_keeps_new_strong_node_apart() -> None:
    graph = IdentityGraph()
    graph.apply(obs("m1", USER, EMAIL))
    applied = graph.apply(obs("m2", USER2, EMAIL))  # shared family email
    (conflict,) = applied.conflicts
    assert (conflict.customer_a, conflict.customer_b) == (cid(USER2), cid(USER, EMAIL))
    assert conflict.node_id == EMAIL.node_id
    assert applied.customer_id == cid(USER2)
    assert applied.new_nodes == [(USER2, cid(USER2))]
    assert graph.clusters() == {cid(USER, EMAIL): {USER, EMAIL}, cid(USER2): {USER2}}


def test_limit_counts_distinct_identifiers_of_the_union() -> None:
    rules = MergeRules(limits={"email": 2})
    graph = IdentityGraph(rules)
    emails = [node("email", f"e{i}@x.nl") for i in range(3)]
    graph.apply(obs("m1", ANON, emails[0], emails[1]))
    applied = graph.apply(obs("m2", ANON, emails[2]))
    assert [c.id_type for c in applied.conflicts] == ["email"]
    assert graph.customer_of(emails[2].node_id) != graph.customer_of(ANON.node_id)
    # Within the limit, merging still works.
    assert graph.apply(obs("m3", ANON, emails[1])).conflicts == []


def test_blocked_values_link_nothing() -> None:
    graph = IdentityGraph()
    rules = MergeRules()
    for i in range(3):
        ev = event(f"m{i}", anonymousId=f"a{i}", identifiers={"email": "NULL", "phone": "0000"})
        graph.apply(observation_from_event(ev, rules, HASHER, REGION))
    assert len(graph) == 3


def test_kiosk_device_on_store_merges_nobody() -> None:
    rules = MergeRules()
    graph = IdentityGraph(rules)
    for i in range(3):
        ev = event(f"s{i}", "store", identifiers={"device_id": "kiosk-1", "email": f"p{i}@x.nl"})
        graph.apply(observation_from_event(ev, rules, HASHER, REGION))
    assert len(graph) == 3
    assert graph.customer_of(node("device_id", "kiosk-1").node_id) is None
    # The same device id on the app channel is a personal device and links.
    for i in range(2):
        ev = event(f"a{i}", "app", identifiers={"device_id": "phone-9", "email": f"q{i}@x.nl"})
        graph.apply(observation_from_event(ev, rules, HASHER, REGION))
    assert len(graph) == 4


def test_alias_links_previous_anonymous_id() -> None:
    rules = MergeRules()
    graph = IdentityGraph(rules)
    graph.apply(observation_from_event(event("m1", anonymousId="a1"), rules, HASHER, REGION))
    ev = event("m2", type="alias", userId="U-1", previousId="a1", minute=1)
    applied = graph.apply(observation_from_event(ev, rules, HASHER, REGION))
    assert applied.customer_id == cid(USER, ANON)
    assert graph.customer_of(ANON.node_id) == graph.customer_of(USER.node_id)
    assert graph.customer_of(node("user_id", "a1").node_id) is None


def test_alias_links_previous_user_id_when_known() -> None:
    rules = MergeRules(limits={"user_id": 2})
    graph = IdentityGraph(rules)
    graph.apply(observation_from_event(event("m1", userId="U-1"), rules, HASHER, REGION))
    ev = event("m2", type="alias", userId="U-2", previousId="U-1")
    applied = graph.apply(observation_from_event(ev, rules, HASHER, REGION))
    assert graph.customer_of(USER.node_id) == graph.customer_of(USER2.node_id)
    assert graph.customer_of(node("anonymous_id", "U-1").node_id) is None
    assert applied.new_nodes == [(USER2, cid(USER, USER2))]


def test_alias_between_user_ids_respects_the_limit() -> None:
    rules = MergeRules()
    graph = IdentityGraph(rules)
    graph.apply(observation_from_event(event("m1", userId="U-1"), rules, HASHER, REGION))
    ev = event("m2", type="alias", userId="U-2", previousId="U-1")
    applied = graph.apply(observation_from_event(ev, rules, HASHER, REGION))
    assert [c.id_type for c in applied.conflicts] == ["user_id"]
    assert applied.customer_id == cid(USER2)


def test_alias_target_is_loaded_from_a_subgraph() -> None:
    rules = MergeRules(limits={"user_id": 2})
    ev = event("m2", type="alias", userId="U-2", previousId="U-1")
    o = observation_from_event(ev, rules, HASHER, REGION)
    assert set(o.touched_node_ids()) == {
        USER2.node_id,
        USER.node_id,
        node("anonymous_id", "U-1").node_id,
    }
    graph = IdentityGraph.from_clusters({cid(USER): [USER]}, rules)
    graph.apply(o)
    assert graph.clusters() == {cid(USER, USER2): {USER, USER2}}


def test_merge_winner_is_order_independent() -> None:
    first, second = IdentityGraph(), IdentityGraph()
    first.apply(obs("m1", EMAIL))
    first.apply(obs("m2", PHONE))
    second.apply(obs("m2", PHONE))
    second.apply(obs("m1", EMAIL))
    a = first.apply(obs("m3", EMAIL, PHONE)).merges
    b = second.apply(obs("m3", PHONE, EMAIL)).merges
    assert a == b


def test_from_clusters_round_trip_and_validation() -> None:
    graph = IdentityGraph()
    graph.apply(obs("m1", EMAIL, ANON))
    graph.apply(obs("m2", USER, CARD))
    loaded = IdentityGraph.from_clusters({k: list(v) for k, v in graph.clusters().items()})
    assert loaded.clusters() == graph.clusters()
    with pytest.raises(GraphError, match="anchor"):
        IdentityGraph.from_clusters({"cus_wrong": [EMAIL]})
    with pytest.raises(GraphError, match="twice"):
        IdentityGraph.from_clusters({cid(EMAIL): [EMAIL], cid(EMAIL, ANON): [ANON, EMAIL]})
    with pytest.raises(GraphError, match="no nodes"):
        IdentityGraph.from_clusters({cid(EMAIL): []})


def test_rebuild_sorts_dedupes_and_splits() -> None:
    observations = [
        obs("m3", USER2, EMAIL, minute=3),  # conflicts with m1: the earliest wins
        obs("m1", USER, EMAIL, minute=1),
        obs("m2", EMAIL, PHONE, minute=2),
        obs("m2", EMAIL, PHONE, minute=2),
    ]
    graph = rebuild(reversed(observations))
    assert graph.clusters() == {cid(USER, EMAIL, PHONE): {USER, EMAIL, PHONE}, cid(USER2): {USER2}}
    # Splitting the merge caused by m2 puts the phone back on its own.
    split = rebuild(observations, excluded_message_ids=frozenset({"m2"}))
    assert split.clusters() == {cid(USER, EMAIL): {USER, EMAIL}, cid(USER2): {USER2}}


def test_rebuild_with_unlimited_rules_merges_everything_connected() -> None:
    graph = rebuild([obs("m1", USER, EMAIL), obs("m2", USER2, EMAIL)], rules=UNLIMITED)
    assert len(graph) == 1


def test_existing_customer_losing_to_a_fresh_anchor_is_a_merge() -> None:
    graph = IdentityGraph()
    graph.apply(obs("m1", EMAIL, PHONE))
    assert ANON.node_id < EMAIL.node_id  # "anonymous_id:..." sorts before "email:..."
    applied = graph.apply(obs("m2", ANON, EMAIL))
    (merge,) = applied.merges
    assert (merge.winner, merge.loser) == (cid(ANON), cid(EMAIL, PHONE))
    # The linking node is the one that brought the cluster merged into the
    # accumulated one (here the fresh anonymous id joining the email's customer).
    assert (merge.linking_node_id, merge.linking_type) == (ANON.node_id, "anonymous_id")
    assert applied.customer_id == cid(ANON, EMAIL, PHONE)
    assert applied.new_nodes == [(ANON, cid(ANON))]


def test_unknown_types_rank_last_but_still_link() -> None:
    crm = node("crm_id", "c-1")
    graph = IdentityGraph()
    applied = graph.apply(obs("m1", crm, ANON))
    assert applied.customer_id == cid(crm, ANON)
    assert graph.customer_of(crm.node_id) == graph.customer_of(ANON.node_id)


def test_full_path_from_events() -> None:
    rules = MergeRules()
    graph = IdentityGraph(rules)
    events = [
        event("w1", "web", anonymousId="a-1", identifiers={"email": "Anna@X.nl"}),
        event("s1", "store", identifiers={"loyalty_card": "1234-5678", "phone": "06 12345678"}),
        event("n1", "newsletter", identifiers={"email": " anna@x.NL", "phone": "+31612345678"}),
    ]
    customers = [
        graph.apply(observation_from_event(e, rules, HASHER, REGION)).customer_id for e in events
    ]
    (final,) = graph.clusters()
    assert customers[0] == customers[2] == final  # the anchor a-1 came with the first event
    assert customers[1] != final  # the store visit was its own customer until n1 linked it
    assert graph.customer_of(node("loyalty_card", "12345678").node_id) == final
