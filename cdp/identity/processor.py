"""The identity processor: validate, de-duplicate and resolve channel events, write
the graph to PostgreSQL (offset-fenced, one transaction per batch) and emit resolved
events and merge records on ``cdp.touchpoints.resolved``.

Identity writes from every worker serialise on one transaction-scoped advisory lock:
two workers linking overlapping identifiers can neither deadlock nor interleave, and
with batches of thousands of events the lock is taken a few times per second.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson
import psycopg

from cdp.config import Settings
from cdp.errors import ValidationError
from cdp.events import Event, parse_event
from cdp.identity.forget_keys import suppress_hash
from cdp.identity.graph import IdentityGraph, observation_from_event
from cdp.identity.hashing import IdentifierHasher
from cdp.identity.mask import mask
from cdp.identity.model import Merge, Node, Observation, rank
from cdp.identity.normalize import normalize
from cdp.identity.rules import MergeRules
from cdp.identity.store import IdentityStore, NodeSighting
from cdp.pipeline import dedup, fence
from cdp.pipeline.deadletter import DeadLetter
from cdp.pipeline.publish import Output
from cdp.pipeline.records import Record
from cdp.pipeline.runner import BatchResult

NAME = "identity"
LOCK_KEY = 0x0CD9_1D01
# An unresolved event keeps its source key on the resolved topic, unless the key is
# longer than this: any Kafka client may send a key of nearly a megabyte, and with
# the event added the output would be over the producer's limit, refused on every try
# while its partition waits. A longer key is replaced by its SHA-256 (same key, same
# partition, every time).
SOURCE_KEY_KEPT = 1024


@dataclass(slots=True)
class _Valid:
    record: Record
    event: Event


class IdentityProcessor:
    name = NAME

    def __init__(self, settings: Settings, rules: MergeRules | None = None) -> None:
        self.settings = settings
        self.rules = rules or MergeRules.load()
        self.hasher = IdentifierHasher(settings.identity_secret.get_secret_value().encode())
        self.region = settings.default_phone_region
        self.resolved_topic = settings.topic("touchpoints.resolved")

    # -- parsing ----------------------------------------------------------------
    def _parse(self, records: Sequence[Record], result: BatchResult) -> list[_Valid]:
        valid: list[_Valid] = []
        for rec in records:
            try:
                valid.append(_Valid(rec, parse_event(rec.value)))
            except ValidationError as exc:
                result.refuse(rec, exc, NAME)
        return valid

    def _observation(self, event: Event, dropped: Counter[str]) -> Observation:
        return observation_from_event(event, self.rules, self.hasher, self.region, dropped)

    # -- the batch --------------------------------------------------------------
    def apply(self, conn: psycopg.Connection[Any], records: Sequence[Record]) -> BatchResult:
        result = BatchResult()
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        fresh, fenced = fence.split_fenced(fence.load_fences(conn, NAME, records), records)
        store = IdentityStore(conn)

        valid = self._parse(fresh, result)
        new_ids = dedup.claim_new(conn, NAME, (v.event.messageId for v in valid))
        todo: list[_Valid] = []
        for v in valid:
            if v.event.messageId in new_ids:
                new_ids.discard(v.event.messageId)  # a duplicate inside the batch too
                todo.append(v)
            else:
                result.count("duplicates")

        dropped: Counter[str] = Counter()
        observations = [(v, self._observation(v.event, dropped)) for v in todo]
        observations = self._without_forgotten(store, observations, result)
        blocked = store.blocked(nid for _, o in observations for nid in o.touched_node_ids())
        if blocked:
            observations = [(v, _without(o, blocked)) for v, o in observations]
            dropped["blocked_manual"] += len(blocked)
        # Apply in event-time order: where merge limits conflict, earlier evidence wins.
        observations.sort(key=lambda vo: (vo[1].event_time, vo[1].message_id))

        touched = {nid for _, o in observations for nid in o.touched_node_ids()}
        graph = IdentityGraph.from_clusters(store.load_clusters(touched), self.rules)
        merges: list[Merge] = []
        sightings: list[NodeSighting] = []
        masks: dict[str, str] = {}
        for v, obs in observations:
            applied = graph.apply(obs)
            merges += applied.merges
            result.count("conflicts", len(applied.conflicts))
            store.add_conflicts(applied.conflicts)
            sightings += self._sightings(v.event, obs, graph, masks)

        merge_ids = store.write(graph, sightings, merges, [o for _, o in observations])
        store.count_dropped(dropped)
        fence.advance(conn, NAME, records)

        # outputs: merge records first (keyed by the surviving customer), then events,
        # each with its customer as of the end of the batch
        for merge, merge_id in zip(merges, merge_ids, strict=True):
            final = graph.customer_of(merge.linking_node_id) or merge.winner
            result.outputs.append(self._merge_output(merge, merge_id, final))
        result.count("merges", len(merges))
        for v, obs in observations:
            node = _strongest(obs)
            cid = graph.customer_of(node.node_id) if node else None
            result.outputs.append(self._event_output(v.record, cid, node))
        result.count("resolved", len(observations))

        if fenced:  # redelivered after a crash: re-publish with a read-only lookup
            self._republish(store, fenced, result)
            result.count("republished", len(fenced))
        return result

    # -- helpers ----------------------------------------------------------------
    def _without_forgotten(
        self,
        store: IdentityStore,
        observations: list[tuple[_Valid, Observation]],
        result: BatchResult,
    ) -> list[tuple[_Valid, Observation]]:
        """Drop events of people who asked to be forgotten (`cdp identity forget`)."""
        secret = self.settings.identity_secret.get_secret_value().encode()
        keys = {
            nid: suppress_hash(secret, nid) for _, o in observations for nid in o.touched_node_ids()
        }
        suppressed = store.suppressed(keys.values())
        if not suppressed:
            return observations
        kept = [
            (v, o) for v, o in observations
            if not any(keys[nid] in suppressed for nid in o.touched_node_ids())
        ]  # fmt: skip
        result.count("suppressed", len(observations) - len(kept))
        return kept

    def _sightings(
        self, event: Event, obs: Observation, graph: IdentityGraph, masks: dict[str, str]
    ) -> list[NodeSighting]:
        channel = event.channel.value
        nodes = list(obs.nodes)
        # the alias target the graph chose (its plaintext is previousId)
        nodes += [n for n in obs.alias_previous or () if graph.customer_of(n.node_id)]
        out = []
        for node in nodes:
            masked = masks.get(node.node_id)
            if masked is None:  # once per identifier per batch: normalising costs
                plain = dict(event.identifier_pairs()).get(node.id_type, event.previousId)
                norm = normalize(node.id_type, plain, self.region) if plain else None
                masked = masks[node.node_id] = mask(node.id_type, norm or "")
            out.append(NodeSighting(node, masked, obs.event_time, channel))
        return out

    def _merge_output(self, merge: Merge, merge_id: int, final: str) -> Output:
        value = orjson.dumps(
            {
                "kind": "merge",
                "merge_id": merge_id,
                "winner": final,
                "loser": merge.loser,
                "linking_type": merge.linking_type,
                "message_id": merge.message_id,
                "event_time": merge.event_time,
            }
        )
        return Output(self.resolved_topic, final.encode(), value, (("kind", b"merge"),))

    def _event_output(self, rec: Record, customer_id: str | None, node: Node | None) -> Output:
        """The resolved event with its customer and the identifier that decided it
        (``node_id``: the journey re-attributes the event by it after a split)."""
        cid = orjson.dumps(customer_id)
        nid = orjson.dumps(node.node_id if node and customer_id else None)
        value = (
            b'{"kind":"event","customer_id":' + cid + b',"node_id":' + nid
            + b',"event":' + rec.value + b"}"
        )  # fmt: skip
        key = customer_id.encode() if customer_id else _source_key(rec.key)
        return Output(self.resolved_topic, key, value, (("kind", b"event"),))

    def _republish(
        self, store: IdentityStore, fenced: Sequence[Record], result: BatchResult
    ) -> None:
        """Outputs of records applied before a crash, rebuilt without applying them
        again: their merge records, dead letters and resolved events (customer as of
        now). Downstream de-duplicates by messageId, so re-publishing is harmless;
        not re-publishing could lose them."""
        events: list[tuple[Record, Event]] = []
        for rec in fenced:
            try:
                events.append((rec, parse_event(rec.value)))
            except ValidationError as exc:
                result.dead_letters.append(DeadLetter(rec, exc.reason, exc.detail, NAME))
        for m in store.merges_caused_by([ev.messageId for _, ev in events]):
            result.outputs.append(self._merge_output(m.merge, m.merge_id, m.final))
        dropped: Counter[str] = Counter()
        obs = {
            (rec.topic, rec.partition, rec.offset): self._observation(ev, dropped)
            for rec, ev in events
        }
        lookup = store.customers_of({nid for o in obs.values() for nid in o.touched_node_ids()})
        for rec, _ev in events:
            node = _strongest(obs[(rec.topic, rec.partition, rec.offset)])
            cid = lookup.get(node.node_id) if node else None
            result.outputs.append(self._event_output(rec, cid, node))


def _strongest(obs: Observation) -> Node | None:
    """The node whose customer an event belongs to (as :meth:`IdentityGraph.apply`)."""
    nodes = obs.nodes or obs.alias_previous or ()
    return min(nodes, key=lambda n: (rank(n.id_type), n.node_id)) if nodes else None


def _without(obs: Observation, blocked: set[str]) -> Observation:
    """The observation minus manually blocked identifiers."""
    alias = tuple(n for n in obs.alias_previous or () if n.node_id not in blocked)
    return replace(
        obs,
        nodes=tuple(n for n in obs.nodes if n.node_id not in blocked),
        alias_previous=alias or None,
    )


def _source_key(key: bytes | None) -> bytes | None:
    if key is None or len(key) <= SOURCE_KEY_KEPT:
        return key
    return b"sha256:" + hashlib.sha256(key).hexdigest().encode()
