"""Exceptions raised by cdp.

::

    CDPError
    ├── ConfigError            bad or missing configuration
    ├── StackError             the local stack could not be started or reached
    ├── ValidationError        an event envelope is invalid (carries the raw record)
    ├── KafkaError             wraps confluent-kafka errors (delivery, admin)
    └── StoreError             wraps psycopg errors
        └── TransientStoreError  worth retrying (connection lost, serialization)
"""

from __future__ import annotations


class CDPError(Exception):
    """Base of every error cdp raises on purpose."""


class ConfigError(CDPError):
    pass


class StackError(CDPError):
    pass


class ValidationError(CDPError):
    """An event that does not satisfy the envelope contract.

    ``reason`` is a short machine-readable code (``invalid_json``, ``too_large``, ...)
    and ``detail`` a human explanation; ``raw`` keeps the original bytes so the
    dead-letter record can carry them.
    """

    def __init__(self, reason: str, detail: str = "", raw: bytes | None = None) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.raw = raw


class KafkaError(CDPError):
    pass


class StoreError(CDPError):
    pass


class TransientStoreError(StoreError):
    pass
