"""The identity graph: union-find over hashed identifiers with merge limits.

Pure and in memory. The stream processor loads the clusters a batch touches
(:meth:`IdentityGraph.from_clusters`), applies the batch's observations and persists
the returned merges and new nodes; :func:`rebuild` is the batch reference.

A cluster's *anchor* is its smallest ``node_id`` and its customer id is
``customer_id_for(anchor)``. Without conflicts the clusters are the connected
components of all observations, so they (and the customer ids) depend only on the
set of observations, not on their order or batching. Conflicts (refused merges) make
the result depend on the order applied; :func:`rebuild` applies in
``(event_time, message_id)`` order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet

from cdp.errors import CDPError
from cdp.events.envelope import Event
from cdp.identity.hashing import IdentifierHasher, customer_id_for
from cdp.identity.model import (
    UNKNOWN_RANK,
    Applied,
    Conflict,
    Merge,
    Node,
    Observation,
    rank,
    rank_table,
)
from cdp.identity.rules import MergeRules, alias_candidates, usable_nodes

LIMIT_EXCEEDED = "limit_exceeded"
_RANK_GET = rank_table().get


class GraphError(CDPError):
    """Stored clusters are inconsistent (wrong customer id, node in two clusters)."""


class _Cluster:
    # ``cid`` is computed lazily (a sha256 per singleton is the hot path's biggest
    # cost, and most singletons are absorbed at once). ``born`` is the apply tick
    # that created the cluster, to tell fresh clusters from stored ones.
    __slots__ = ("anchor", "born", "cid", "counts", "members")

    def __init__(self, anchor: str, members: list[Node], counts: dict[str, int], born: int) -> None:
        self.anchor = anchor
        self.cid: str | None = None
        self.members = members
        self.counts = counts
        self.born = born

    def customer_id(self) -> str:
        cid = self.cid
        if cid is None:
            cid = self.cid = customer_id_for(self.anchor)
        return cid


class IdentityGraph:
    """Mutable in-memory identity state: node → customer, customer → members."""

    __slots__ = ("_limits", "_other_limit", "_owner", "_tick", "rules")

    def __init__(self, rules: MergeRules | None = None) -> None:
        self.rules = rules if rules is not None else MergeRules()
        self._limits = self.rules.limits
        self._other_limit = self.rules.other_limit
        # node_id → cluster; the only index, so a union touches just the moved nodes
        self._owner: dict[str, _Cluster] = {}
        self._tick = 0

    @classmethod
    def from_clusters(
        cls, mapping: Mapping[str, Sequence[Node]], rules: MergeRules | None = None
    ) -> IdentityGraph:
        """A graph holding stored clusters (customer id → members). Each customer id
        must be ``customer_id_for(min node_id)`` of its members."""
        graph = cls(rules)
        for customer_id, nodes in mapping.items():
            if not nodes:
                raise GraphError(f"customer {customer_id} has no nodes")
            anchor = min(n.node_id for n in nodes)
            expected = customer_id_for(anchor)
            if expected != customer_id:
                raise GraphError(
                    f"customer {customer_id} has anchor {anchor}, whose id is {expected}"
                )
            cluster = _Cluster(anchor, list(nodes), dict(Counter(n.id_type for n in nodes)), -1)
            cluster.cid = customer_id
            for node in nodes:
                if node.node_id in graph._owner:
                    raise GraphError(f"node {node.node_id} appears twice")
                graph._owner[node.node_id] = cluster
        return graph

    # --- queries -----------------------------------------------------------------

    def customer_of(self, node_id: str) -> str | None:
        cluster = self._owner.get(node_id)
        return cluster.customer_id() if cluster is not None else None

    def _distinct(self) -> list[_Cluster]:
        return list({id(c): c for c in self._owner.values()}.values())

    def clusters(self) -> dict[str, frozenset[Node]]:
        """Customer id → members, for every customer (O(nodes))."""
        return {c.customer_id(): frozenset(c.members) for c in self._distinct()}

    def __len__(self) -> int:
        """Number of customers (O(nodes))."""
        return len(self._distinct())

    # --- updates -----------------------------------------------------------------

    def apply(self, obs: Observation) -> Applied:
        """Link the observation's nodes, honouring the per-type limits.

        ``merges`` lists, in order, every union whose losing side held nodes known
        before this observation (its customer id may be stored elsewhere); fresh
        nodes joining a customer are reported in ``new_nodes`` only.
        """
        owner = self._owner
        nodes = obs.nodes
        if obs.alias_previous:
            nodes = (*nodes, self._alias_target(obs))
        if not nodes:
            return Applied(None, [], [], [])
        # Fast path, the steady state: every node known and already in one cluster.
        known = owner.get(nodes[0].node_id)
        if known is not None:
            for node in nodes:
                if owner.get(node.node_id) is not known:
                    break
            else:
                return Applied(known.customer_id(), [], [], [])

        self._tick += 1
        tick = self._tick
        rank_get = _RANK_GET

        new_nodes: list[Node] = []
        # cluster → (rank, node_id, node) of the strongest node that brought it
        touched: dict[_Cluster, tuple[int, str, Node]] = {}
        for node in nodes:
            nid = node.node_id
            cluster = owner.get(nid)
            if cluster is None:
                cluster = _Cluster(nid, [node], {node.id_type: 1}, tick)
                owner[nid] = cluster
                new_nodes.append(node)
            key = (rank_get(node.id_type, UNKNOWN_RANK), nid, node)
            best = touched.get(cluster)
            if best is None or key < best:
                touched[cluster] = key

        merges: list[Merge] = []
        conflicts: list[Conflict] = []
        if len(touched) > 1:
            ordered = sorted(touched.items(), key=_merge_order)
            acc = ordered[0][0]
            for cluster, (_, _, link) in ordered[1:]:
                over = self._exceeded(acc, cluster)
                if over is not None:
                    conflicts.append(
                        Conflict(
                            acc.customer_id(),
                            cluster.customer_id(),
                            over,
                            link.node_id,
                            obs.message_id,
                            obs.event_time,
                            LIMIT_EXCEEDED,
                        )
                    )
                    continue
                winner, loser = (acc, cluster) if acc.anchor < cluster.anchor else (cluster, acc)
                if loser.born != tick:
                    merges.append(
                        Merge(
                            winner.customer_id(),
                            loser.customer_id(),
                            link.node_id,
                            link.id_type,
                            obs.message_id,
                            obs.event_time,
                        )
                    )
                acc = self._union(acc, cluster)

        # The event belongs to its strongest own node's cluster; the alias target
        # counts only when the event has no other node.
        if obs.alias_previous:
            strongest = min(obs.nodes or nodes, key=_strength)
        else:
            strongest = min(touched.values())[2]
        customer = owner[strongest.node_id].customer_id()
        if new_nodes:
            return Applied(
                customer,
                merges,
                conflicts,
                [(n, owner[n.node_id].customer_id()) for n in new_nodes],
            )
        return Applied(customer, merges, conflicts, [])

    def _alias_target(self, obs: Observation) -> Node:
        candidates = obs.alias_previous or ()
        own = {n.node_id for n in obs.nodes}
        for node in candidates[:-1]:
            if node.node_id in self._owner or node.node_id in own:
                return node
        return candidates[-1]

    def _exceeded(self, a: _Cluster, b: _Cluster) -> str | None:
        """The strongest type whose limit the union of ``a`` and ``b`` would exceed."""
        small, big = (
            (a.counts, b.counts) if len(a.counts) <= len(b.counts) else (b.counts, a.counts)
        )
        limits, other = self._limits, self._other_limit
        worst: str | None = None
        for id_type, count in small.items():
            if count + big.get(id_type, 0) > limits.get(id_type, other) and (
                worst is None or (rank(id_type), id_type) < (rank(worst), worst)
            ):
                worst = id_type
        return worst

    def _union(self, a: _Cluster, b: _Cluster) -> _Cluster:
        # Move the smaller member list (amortised O(n log n)); the anchor and customer
        # id follow the smaller anchor whichever object survives.
        if len(a.members) < len(b.members):
            a, b = b, a
        owner = self._owner
        for node in b.members:
            owner[node.node_id] = a
        a.members.extend(b.members)
        counts = a.counts
        for id_type, count in b.counts.items():
            counts[id_type] = counts.get(id_type, 0) + count
        if b.anchor < a.anchor:
            a.anchor, a.cid = b.anchor, b.cid
        if b.born < a.born:  # fresh only if both sides were fresh
            a.born = b.born
        return a


def _merge_order(item: tuple[_Cluster, tuple[int, str, Node]]) -> tuple[int, str]:
    return item[1][0], item[0].anchor


def _strength(node: Node) -> tuple[int, str]:
    return rank(node.id_type), node.node_id


def observation_from_event(
    event: Event,
    rules: MergeRules,
    hasher: IdentifierHasher,
    region: str,
    dropped: Counter[str] | None = None,
) -> Observation:
    """The event's identity content; dropped values are added to ``dropped``."""
    channel = event.channel.value
    nodes, drops = usable_nodes(event, rules, hasher, region)
    alias: tuple[Node, ...] | None = None
    if event.type == "alias" and event.previousId is not None:
        candidates, alias_drops = alias_candidates(event.previousId, channel, rules, hasher, region)
        alias = candidates or None
        drops.update(alias_drops)
    if dropped is not None:
        dropped.update(drops)
    return Observation(event.messageId, event.timestamp, channel, tuple(nodes), alias)


def rebuild(
    observations: Iterable[Observation],
    excluded_message_ids: AbstractSet[str] = frozenset(),
    rules: MergeRules | None = None,
) -> IdentityGraph:
    """The batch reference: apply in ``(event_time, message_id)`` order, each message
    once, skipping ``excluded_message_ids`` (how a wrong merge is split)."""
    graph = IdentityGraph(rules)
    seen: set[str] = set()
    for obs in sorted(observations, key=lambda o: (o.event_time, o.message_id)):
        if obs.message_id in seen or obs.message_id in excluded_message_ids:
            continue
        seen.add(obs.message_id)
        graph.apply(obs)
    return graph
