"""The collector's HTTP contract: auth, limits, encodings, errors, health, metrics."""

from __future__ import annotations

import base64
import gzip
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import psycopg

from cdp.collector import CollectorConfig, revoke_source
from cdp.collector.app import ENDPOINTS
from cdp.config import Settings
from tests.integration.collector.conftest import Serve


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def _track(mid: str = "m-1", **extra: Any) -> dict[str, Any]:
    return {"messageId": mid, "anonymousId": "a-1", "event": "Product Viewed"} | extra


def test_missing_unknown_or_revoked_key_is_401_on_every_endpoint(
    settings: Settings,
    topics: dict[str, str],
    keys: dict[str, str],
    db: psycopg.Connection[Any],
    serve: Serve,
) -> None:
    revoke_source(db, "ios-app")
    with serve(settings) as url, httpx.Client(base_url=url, timeout=10) as http:
        for kind in ENDPOINTS:
            path = f"/v1/{kind}"
            body = {"batch": [_track(type="track")]} if kind == "batch" else _track()
            attempts = [
                http.post(path, json=body),
                http.post(path, json=body, headers=_auth("wk_unknown")),
                http.post(path, json=body, headers=_auth(keys["app"])),  # revoked
                http.post(path, json=body | {"writeKey": "wk_unknown"}),
                http.post(path, json=body | {"writeKey": keys["app"]}),
                http.post(path, content=b"{not json"),
                http.post(path, content=b"x" * 600_000),
                # a good body key does not rescue a bad header
                http.post(path, json=body | {"writeKey": keys["web"]}, headers=_auth("wk_no")),
            ]
            assert [r.status_code for r in attempts] == [401] * len(attempts), path
            assert attempts[0].json()["error"] == "unauthorized"


def test_revoked_key_stops_working_within_the_cache_ttl(
    settings: Settings,
    topics: dict[str, str],
    keys: dict[str, str],
    db: psycopg.Connection[Any],
    serve: Serve,
) -> None:
    ttl = CollectorConfig().auth_ttl_s
    assert ttl <= 5
    with serve(settings) as url, httpx.Client(base_url=url, timeout=10) as http:
        assert http.post("/v1/track", json=_track(), headers=_auth(keys["web"])).status_code == 200
        revoke_source(db, "webshop")
        revoked_at = time.monotonic()
        while True:
            status = http.post("/v1/track", json=_track(), headers=_auth(keys["web"])).status_code
            if status == 401:
                break
            assert status == 200
            assert time.monotonic() - revoked_at < ttl + 0.5, "revoked key still accepted"
            time.sleep(0.1)


def test_limits_encodings_and_invalid_input(
    settings: Settings,
    topics: dict[str, str],
    keys: dict[str, str],
    serve: Serve,
    record_count: Callable[[str], int],
) -> None:
    web_topic = settings.topic("touchpoints.web")
    auth = _auth(keys["web"])
    big = {"blob": "x" * 33_000}
    with serve(settings) as url, httpx.Client(base_url=url, timeout=10) as http:
        # oversize event, on its own and inside a batch; oversize batch (also gzip'd)
        r = http.post("/v1/track", json=_track(properties=big), headers=auth)
        assert (r.status_code, r.json()["error"]) == (413, "too_large")
        r = http.post("/v1/batch", json={"batch": [_track(type="track", properties=big)]},
                      headers=auth)  # fmt: skip
        assert r.status_code == 413 and r.json()["invalid"][0]["index"] == 0
        many = {"batch": [_track(f"m{i}", type="track", properties={"p": "y" * 20_000})
                          for i in range(30)]}  # fmt: skip
        assert http.post("/v1/batch", json=many, headers=auth).status_code == 413
        packed = gzip.compress(orjson.dumps(many))
        assert len(packed) < 500 * 1024 < len(orjson.dumps(many))
        r = http.post("/v1/batch", content=packed, headers=auth | {"Content-Encoding": "gzip"})
        assert r.status_code == 413
        bomb = gzip.compress(b" " * 20_000_000)
        r = http.post("/v1/track", content=bomb, headers=auth | {"Content-Encoding": "gzip"})
        assert r.status_code == 413

        # invalid JSON, invalid gzip, invalid envelope; a batch with a bad item stores nothing
        r = http.post("/v1/track", content=b'{"messageId": ', headers=auth)
        assert (r.status_code, r.json()["error"]) == (400, "invalid_json")
        r = http.post("/v1/track", content=b"nope", headers=auth | {"Content-Encoding": "gzip"})
        assert (r.status_code, r.json()["error"]) == (400, "invalid_gzip")
        r = http.post("/v1/track", json={"anonymousId": "a", "event": "X"}, headers=auth)
        assert (r.status_code, r.json()["error"]) == (400, "missing_field")
        bad_batch = {
            "batch": [
                _track(type="track"),
                _track("m2"),
                _track("m3", type="track", timestamp="soon"),
            ]
        }
        r = http.post("/v1/batch", json=bad_batch, headers=auth)
        assert r.status_code == 400
        assert [(e["index"], e["reason"]) for e in r.json()["invalid"]] == [
            (1, "missing_field"),
            (2, "invalid_value"),
        ]
        assert record_count(web_topic) == 0

        # accepted: gzip body with writeKey in the body (no header), and a plain batch
        body = gzip.compress(orjson.dumps(_track("gz") | {"writeKey": keys["web"]}))
        r = http.post("/v1/track", content=body, headers={"Content-Encoding": "gzip"})
        assert (r.status_code, r.json()) == (200, {"success": True})
        batch = {"batch": [_track(f"b{i}", type="track") for i in range(5)]}
        assert http.post("/v1/batch", json=batch, headers=auth).status_code == 200
        # analytics.js style: short path, text/plain, writeKey in the body
        beacon = orjson.dumps(_track("js") | {"writeKey": keys["web"]})
        r = http.post("/v1/t", content=beacon, headers={"Content-Type": "text/plain"})
        assert r.status_code == 200
        assert record_count(web_topic) == 7

        preflight = http.options(
            "/v1/track",
            headers={
                "Origin": "https://shop.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type,anonymousid",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "*"

        health = http.get("/health")
        assert health.status_code == 200
        assert health.json() == {"status": "ok", "kafka": True, "database": True}
        metrics = http.get("/metrics").text
        assert 'cdp_collector_requests_total{endpoint="batch",status="413"} 3.0' in metrics
        assert 'cdp_collector_events_accepted_total{channel="web"} 7.0' in metrics
        assert 'cdp_collector_events_rejected_total{reason="batch_rejected"} 1.0' in metrics
        assert "cdp_collector_produce_seconds_count 3.0" in metrics


def test_kafka_unreachable_is_503_never_200(
    settings: Settings, keys: dict[str, str], serve: Serve
) -> None:
    down = settings.model_copy(update={"kafka_bootstrap": "127.0.0.1:1"})
    config = CollectorConfig(produce_timeout_s=1.0)
    auth = _auth(keys["web"])
    with serve(down, config) as url, httpx.Client(base_url=url, timeout=10) as http:
        r = http.post("/v1/track", json=_track(), headers=auth)
        assert (r.status_code, r.json()["error"]) == (503, "not_acknowledged")
        batch = {"batch": [_track(f"b{i}", type="track") for i in range(3)]}
        assert http.post("/v1/batch", json=batch, headers=auth).status_code == 503
        health = http.get("/health")
        assert health.status_code == 503
        assert health.json()["kafka"] is False and health.json()["database"] is True
