"""The real segment-analytics-python client against the collector, read back from Kafka."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from segment.analytics.client import Client

from cdp.config import Settings
from tests.integration.collector.conftest import Serve


def _by_id(records: list[Any]) -> dict[str, tuple[bytes, dict[str, Any], dict[str, bytes]]]:
    out = {}
    for msg in records:
        doc = orjson.loads(msg.value())
        out[doc["messageId"]] = (msg.key(), doc, dict(msg.headers()))
    return out


def test_segment_sdk_calls_land_on_the_channel_topics(
    settings: Settings,
    topics: dict[str, str],
    keys: dict[str, str],
    serve: Serve,
    consume: Callable[..., list[Any]],
) -> None:
    errors: list[Any] = []
    with serve(settings) as url:
        # web: one request per call (sync mode)
        web = Client(write_key=keys["web"], host=url, sync_mode=True)
        web.track(
            anonymous_id="anon-1",
            event="Product Viewed",
            properties={"sku": "SKU-1"},
            context={"traits": {"email": "Ann@Example.com"}},
            message_id="w-track",
        )
        web.identify(
            user_id="u-1",
            traits={"email": "ann@example.com", "phone": "+31 6 12345678", "loyalty_card": "L-77"},
            message_id="w-identify",
        )
        web.page(anonymous_id="anon-1", name="Home", category="Shop", message_id="w-page")
        web.alias(previous_id="anon-1", user_id="u-1", message_id="w-alias")

        # app: the background consumer sends one gzip'd /v1/batch
        app = Client(
            write_key=keys["app"],
            host=url,
            gzip=True,
            upload_size=100,
            upload_interval=0.2,
            max_retries=0,
            on_error=lambda err, batch: errors.append(err),
        )
        device = {"device": {"id": "dev-9"}}
        ext = {"externalIds": [{"id": "P-1", "type": "pos_customer_id", "collection": "users"}]}
        app.screen(anonymous_id="anon-9", name="Cart", context=device, message_id="a-screen")
        app.track(user_id="u-9", event="Order Completed", context=ext, message_id="a-track")
        app.identify(anonymous_id="anon-9", traits={"email": "z@x.nl"}, message_id="a-identify")
        app.group(user_id="u-9", group_id="g-1", message_id="a-group")
        app.flush()
        app.join()
    assert errors == []

    web_records = _by_id(consume(settings.topic("touchpoints.web"), n=4))
    app_records = _by_id(consume(settings.topic("touchpoints.app"), n=4))
    assert set(web_records) == {"w-track", "w-identify", "w-page", "w-alias"}
    assert set(app_records) == {"a-screen", "a-track", "a-identify", "a-group"}

    key, doc, headers = web_records["w-track"]
    assert key == b"email:Ann@Example.com"
    assert doc["channel"] == "web" and doc["identifiers"] == {"email": "Ann@Example.com"}
    assert doc["properties"] == {"sku": "SKU-1"} and "receivedAt" in doc
    assert headers == {"schema_version": b"1", "source": b"webshop"}

    key, doc, _ = web_records["w-identify"]
    assert key == b"user_id:u-1"
    assert doc["identifiers"] == {
        "email": "ann@example.com",
        "phone": "+31 6 12345678",
        "loyalty_card": "L-77",
    }
    assert web_records["w-page"][1]["properties"] == {"category": "Shop"}
    assert web_records["w-alias"][1]["previousId"] == "anon-1"

    assert app_records["a-screen"][0] == b"device_id:dev-9"
    assert app_records["a-track"][1]["identifiers"] == {"pos_customer_id": "P-1"}
    assert app_records["a-identify"][1]["identifiers"] == {"email": "z@x.nl"}
    assert app_records["a-group"][1]["groupId"] == "g-1"
    for _, doc, headers in app_records.values():
        assert doc["channel"] == "app" and headers["source"] == b"ios-app"
        assert doc["context"]["library"]["name"] == "analytics-python"
