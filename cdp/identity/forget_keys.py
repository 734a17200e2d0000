"""The suppression key of a forgotten identifier (kept apart from :mod:`forget` so the
identity processor does not import the lake)."""

from __future__ import annotations

import hashlib
import hmac


def suppress_hash(secret: bytes, node_id: str) -> str:
    """A keyed hash in its own domain: not the node id stored anywhere else."""
    return hmac.new(secret, b"forget:" + node_id.encode(), hashlib.sha256).hexdigest()
