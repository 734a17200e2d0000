"""The local stack: a real Kafka broker (KRaft) and a real PostgreSQL server as local
processes, for development, tests and the demo. Users with Docker can use
``deploy/compose.yaml`` instead; with ``CDP_KAFKA_BOOTSTRAP`` and ``CDP_DATABASE_URL``
set, nothing starts and everything uses those services.
"""

from cdp.stack.manager import Stack

__all__ = ["Stack"]
