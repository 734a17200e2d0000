"""The Segment/RudderStack-compatible HTTP collector: ``POST /v1/{track,...,batch}`` onto
the channel topics, answering 200 only once Kafka has acknowledged every event.
"""

from cdp.collector.app import CollectorConfig, create_app
from cdp.collector.sources import (
    Source,
    SourceCache,
    SourceError,
    add_source,
    authenticate,
    list_sources,
    revoke_source,
)

__all__ = [
    "CollectorConfig",
    "Source",
    "SourceCache",
    "SourceError",
    "add_source",
    "authenticate",
    "create_app",
    "list_sources",
    "revoke_source",
]
