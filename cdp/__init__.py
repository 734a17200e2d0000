"""cdp: an event-streaming customer data platform for omnichannel retail.

The public Python API is small: the settings, the event envelope, the producer SDK
and the analytics connection. Everything else is reached through the ``cdp`` CLI.
"""

from cdp.config import Settings, load_settings
from cdp.errors import CDPError
from cdp.events import Event, parse_event
from cdp.kafka.producer import Producer

__all__ = ["CDPError", "Event", "Producer", "Settings", "load_settings", "parse_event"]
__version__ = "0.1.0"
