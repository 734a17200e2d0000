"""``cdp identity rebuild``: the batch reference over the channel topics.

Reads every channel topic from the beginning, builds observations with the same pure
code the stream uses, folds them in event-time order (:func:`cdp.identity.rebuild`)
and compares the clusters with the live graph in PostgreSQL.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import psycopg
from rich.progress import Progress

from cdp.cli.output import console
from cdp.config import Settings
from cdp.errors import ValidationError
from cdp.events import parse_event
from cdp.events.envelope import CHANNELS
from cdp.identity import admin
from cdp.identity.graph import observation_from_event, rebuild
from cdp.identity.hashing import IdentifierHasher
from cdp.identity.model import Observation
from cdp.identity.rules import MergeRules
from cdp.kafka.reader import read_topic


def observations_from_topics(
    settings: Settings, rules: MergeRules, progress: bool = True
) -> list[Observation]:
    hasher = IdentifierHasher(settings.identity_secret.get_secret_value().encode())
    dropped: Counter[str] = Counter()
    out: list[Observation] = []
    with Progress(console=console, transient=True, disable=not progress) as bar:
        task = bar.add_task("reading channel topics", total=None)
        for channel in CHANNELS:
            for msg in read_topic(settings, settings.topic(f"touchpoints.{channel}")):
                try:
                    event = parse_event(msg.value())
                except ValidationError:
                    continue
                out.append(
                    observation_from_event(
                        event, rules, hasher, settings.default_phone_region, dropped
                    )
                )
                bar.advance(task)
    return out


def rebuild_from_topics(
    settings: Settings, conn: psycopg.Connection[Any], progress: bool = True
) -> dict[str, Any]:
    rules = MergeRules.load()
    blocked = {r[0] for r in conn.execute("SELECT node_id FROM identity_blocklist")}
    observations = observations_from_topics(settings, rules, progress)
    if blocked:
        from cdp.identity.processor import _without

        observations = [_without(o, blocked) for o in observations]
    node_types = {o_n.node_id: o_n.id_type for o in observations for o_n in o.nodes}
    observations += list(admin.manual_links(conn, node_types))
    graph = rebuild(observations, admin.excluded_messages(conn), rules)
    diffs = admin.compare_with_live(conn, graph)
    return {
        "events": len(observations),
        "identifiers": sum(len(n) for n in graph.clusters().values()),
        "customers": len(graph),
        "differences": diffs,
    }
