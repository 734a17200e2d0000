"""Value types of identity resolution: graph nodes, observations and apply results."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from cdp.events.envelope import KEY_ORDER

_RANK: dict[str, int] = {id_type: i for i, id_type in enumerate(KEY_ORDER)}
UNKNOWN_RANK = len(KEY_ORDER)


def rank_table() -> dict[str, int]:
    """KEY_ORDER as type → rank (a copy), for hot loops that inline :func:`rank`."""
    return dict(_RANK)


def rank(id_type: str) -> int:
    """Strength of an identifier type: 0 is strongest (KEY_ORDER); unknown types last."""
    return _RANK.get(id_type, UNKNOWN_RANK)


@dataclass(frozen=True, order=True, slots=True)
class Node:
    """One hashed identifier. ``node_id`` embeds the type, so it alone is the identity
    (equality, hashing and ordering use ``node_id`` only)."""

    id_type: str = field(compare=False)
    node_id: str


@dataclass(frozen=True, slots=True)
class Observation:
    """What one event says about identity: these nodes belong to one person.

    ``alias_previous`` is set for ``alias`` events: candidate nodes for ``previousId``
    in order of preference (its ``user_id`` node, then its ``anonymous_id`` node).
    The graph picks the first candidate it already knows, else the last one, because
    the type of ``previousId`` depends on what has been seen before.
    """

    message_id: str
    event_time: datetime
    channel: str
    nodes: tuple[Node, ...]
    alias_previous: tuple[Node, ...] | None = None

    def touched_node_ids(self) -> list[str]:
        """Every node id ``apply`` may look up: load these before applying to a
        sub-graph (:meth:`IdentityGraph.from_clusters`)."""
        ids = [n.node_id for n in self.nodes]
        if self.alias_previous:
            ids.extend(n.node_id for n in self.alias_previous)
        return ids


class Merge(NamedTuple):
    """Two customers became one; ``loser`` is now ``winner``."""

    winner: str
    loser: str
    linking_node_id: str
    linking_type: str
    message_id: str
    event_time: datetime


class Conflict(NamedTuple):
    """A merge refused because the union would exceed the limit for ``id_type``;
    ``node_id`` is the observation's node that would have linked the two."""

    customer_a: str
    customer_b: str
    id_type: str
    node_id: str
    message_id: str
    event_time: datetime
    reason: str


class Applied(NamedTuple):
    """The result of :meth:`IdentityGraph.apply`. ``customer_id`` is ``None`` when the
    observation had no usable node; ``new_nodes`` pairs each node first seen here
    with the customer it belongs to after the observation."""

    customer_id: str | None
    merges: list[Merge]
    conflicts: list[Conflict]
    new_nodes: list[tuple[Node, str]]
