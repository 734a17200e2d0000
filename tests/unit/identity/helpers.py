"""Shared builders for the identity tests (no I/O)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from cdp.events.envelope import Event
from cdp.identity import IdentifierHasher, MergeRules, Node, Observation

HASHER = IdentifierHasher(b"test-secret")
REGION = "NL"
T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
UNLIMITED = MergeRules(limits={}, other_limit=10**9)


def node(id_type: str, value: str) -> Node:
    return Node(id_type, HASHER.node_id(id_type, value))


def obs(
    message_id: str,
    *nodes: Node,
    minute: int = 0,
    channel: str = "web",
    alias_previous: tuple[Node, ...] | None = None,
) -> Observation:
    return Observation(
        message_id, T0 + timedelta(minutes=minute), channel, tuple(nodes), alias_previous
    )


def event(message_id: str = "m1", channel: str = "web", minute: int = 0, **fields: Any) -> Event:
    data: dict[str, Any] = {
        "messageId": message_id,
        "type": "track",
        "event": "Product Viewed",
        "channel": channel,
        "timestamp": T0 + timedelta(minutes=minute),
    }
    data.update(fields)
    return Event.model_validate(data)


def components(observations: Iterable[Observation]) -> set[frozenset[Node]]:
    """Connected components by plain BFS: the independent reference."""
    adjacent: dict[Node, set[Node]] = defaultdict(set)
    for o in observations:
        for a in o.nodes:
            adjacent[a].update(o.nodes)
    seen: set[Node] = set()
    result: set[frozenset[Node]] = set()
    for start in adjacent:
        if start in seen:
            continue
        component = {start}
        frontier = [start]
        while frontier:
            for nxt in adjacent[frontier.pop()]:
                if nxt not in component:
                    component.add(nxt)
                    frontier.append(nxt)
        seen |= component
        result.add(frozenset(component))
    return result
