"""Identity resolution core: normalize → hash → union-find with merge limits.

Pure code, no I/O except loading ``schemas/identity.yaml``. See ``docs/identity.md``.
"""

from cdp.identity.graph import (
    LIMIT_EXCEEDED,
    GraphError,
    IdentityGraph,
    observation_from_event,
    rebuild,
)
from cdp.identity.hashing import IdentifierHasher, customer_id_for
from cdp.identity.model import Applied, Conflict, Merge, Node, Observation, rank
from cdp.identity.normalize import normalize
from cdp.identity.rules import (
    DROP_BLOCKED,
    DROP_MALFORMED,
    DROP_NON_LINKING,
    MergeRules,
    alias_candidates,
    clear_caches,
    resolve_identifier,
    usable_nodes,
)

__all__ = [
    "DROP_BLOCKED",
    "DROP_MALFORMED",
    "DROP_NON_LINKING",
    "LIMIT_EXCEEDED",
    "Applied",
    "Conflict",
    "GraphError",
    "IdentifierHasher",
    "IdentityGraph",
    "Merge",
    "MergeRules",
    "Node",
    "Observation",
    "alias_candidates",
    "clear_caches",
    "customer_id_for",
    "normalize",
    "observation_from_event",
    "rank",
    "rebuild",
    "resolve_identifier",
    "usable_nodes",
]
