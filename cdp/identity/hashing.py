"""Keyed hashing of normalized identifiers.

The graph only ever sees ``node_id`` strings: resolution never needs plaintext, and
the HMAC secret keeps the ids from being reversed by hashing guessed emails/phones.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

from cdp.errors import ConfigError

_NODE_HEX = 32
_CUSTOMER_HEX = 24


class IdentifierHasher:
    """``node_id(type, value) = "type:" + HMAC-SHA256(secret, "type:value")[:32 hex]``."""

    __slots__ = ("_node_id", "_secret")

    def __init__(self, secret: bytes) -> None:
        if not secret:
            raise ConfigError("identity secret must not be empty")
        self._secret = secret
        # Per instance, so two hashers with different secrets never share entries.
        self._node_id = lru_cache(maxsize=1 << 18)(self._compute)

    def _compute(self, id_type: str, normalized: str) -> str:
        mac = hmac.digest(self._secret, f"{id_type}:{normalized}".encode(), "sha256")
        return f"{id_type}:{mac.hex()[:_NODE_HEX]}"

    def node_id(self, id_type: str, normalized: str) -> str:
        return self._node_id(id_type, normalized)

    def __repr__(self) -> str:  # never print the secret
        return "IdentifierHasher(<secret>)"


def customer_id_for(anchor_node_id: str) -> str:
    """The customer id of a cluster: a hash of its anchor (smallest) node id."""
    return "cus_" + hashlib.sha256(anchor_node_id.encode()).hexdigest()[:_CUSTOMER_HEX]
