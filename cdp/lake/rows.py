"""From a resolved-event record to one lake row: typed columns, no PII.

The lake keeps what analyses need and nothing that identifies a person: no
identifiers, no ``userId``/``anonymousId``, no traits, no context (IP, user agent);
``properties`` keeps its keys except the ones that name or reach a person.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

import orjson
import pyarrow as pa  # type: ignore[import-untyped]

SCHEMA = pa.schema(
    [
        ("message_id", pa.string()),
        ("customer_id", pa.string()),
        ("event_time", pa.timestamp("us", tz="UTC")),
        ("channel", pa.string()),
        ("type", pa.string()),
        ("event", pa.string()),
        ("name", pa.string()),
        ("category", pa.string()),
        ("product_id", pa.string()),
        ("order_id", pa.string()),
        ("revenue", pa.float64()),
        ("cart_value", pa.float64()),
        ("properties", pa.string()),
        ("consent_analytics", pa.bool_()),
        ("kafka_partition", pa.int32()),
        ("kafka_offset", pa.int64()),
    ]
)
_SAFE_CHANNEL = re.compile(r"^[a-z0-9_]{1,32}$")
COLUMNS: tuple[str, ...] = tuple(SCHEMA.names)

# Property keys dropped wherever they appear (lower-cased, without _ and -).
PII_KEYS = frozenset(
    {
        "email",
        "phone",
        "name",
        "firstname",
        "lastname",
        "fullname",
        "username",
        "address",
        "street",
        "postalcode",
        "zipcode",
        "zip",
        "birthday",
        "birthdate",
        "ip",
        "userid",
        "anonymousid",
        "loyaltycard",
        "poscustomerid",
        "deviceid",
        "cookieid",
        "traits",
        "identifiers",
        "billingaddress",
        "shippingaddress",
    }
)


def _is_pii(key: str) -> bool:
    return key.lower().replace("_", "").replace("-", "") in PII_KEYS


def scrub(value: Any) -> Any:
    """A copy of ``value`` without PII keys, at any depth."""
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if not _is_pii(str(k))}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


def _str(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    return str(value)


def _num(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _first_product(props: dict[str, Any]) -> dict[str, Any]:
    products = props.get("products")
    if isinstance(products, list) and products and isinstance(products[0], dict):
        return products[0]
    return {}


def _consent(context: Any) -> bool | None:
    """``context.consent.analytics`` or Segment's ``categoryPreferences.analytics``."""
    if not isinstance(context, dict):
        return None
    consent = context.get("consent")
    if not isinstance(consent, dict):
        return None
    for holder in (consent, consent.get("categoryPreferences")):
        if isinstance(holder, dict) and isinstance(holder.get("analytics"), bool):
            return bool(holder["analytics"])
    return None


def parse_time(raw: Any) -> datetime:
    moment = raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw))
    if moment.tzinfo is None:  # the envelope requires a zone; be safe with old data
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def to_row(
    customer_id: str, event: dict[str, Any], partition: int, offset: int
) -> tuple[date, str, dict[str, Any]]:
    """(event_date, channel, row) for one resolved event."""
    props = event.get("properties")
    props = props if isinstance(props, dict) else {}
    product = _first_product(props)
    event_time = parse_time(event["timestamp"])
    channel = str(event.get("channel") or "")
    if not _SAFE_CHANNEL.match(channel):  # it becomes a directory name
        channel = "unknown"
    row = {
        "message_id": str(event["messageId"]),
        "customer_id": customer_id,
        "event_time": event_time,
        "channel": channel,
        "type": _str(event.get("type")),
        "event": _str(event.get("event")),
        "name": _str(event.get("name")),
        "category": _str(props.get("category", product.get("category"))),
        "product_id": _str(props.get("product_id", product.get("product_id"))),
        "order_id": _str(props.get("order_id")),
        "revenue": _num(props.get("revenue", props.get("total"))),
        "cart_value": _num(props.get("cart_value")),
        "properties": orjson.dumps(scrub(props)).decode(),
        "consent_analytics": _consent(event.get("context")),
        "kafka_partition": partition,
        "kafka_offset": offset,
    }
    return event_time.date(), channel, row


def analytics_consent(event: dict[str, Any]) -> bool | None:
    """The event's analytics consent: True, False, or None when it states none."""
    return _consent(event.get("context"))
