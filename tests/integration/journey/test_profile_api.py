"""``GET /v1/profiles/...`` on the collector app (read keys) and the read-key commands."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import orjson
import psycopg

from cdp.cli import sources
from cdp.collector import add_source
from cdp.collector.profiles import add_read_key, revoke_read_key
from cdp.config import Settings
from tests.integration.collector.conftest import serve_app
from tests.integration.journey.conftest import make_invoke


def _basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_profile_endpoint(loaded: Settings, ldb: psycopg.Connection[Any]) -> None:
    read_key = add_read_key(ldb, "crm-profile-test")
    write_key = add_source(ldb, "web-profile-test", "web")
    with serve_app(loaded) as url, httpx.Client(base_url=url, timeout=10) as http:
        ok = http.get("/v1/profiles/email:ann@example.nl", headers=_bearer(read_key))
        assert ok.status_code == 200, ok.text
        assert ok.headers["cache-control"] == "no-store"
        profile = ok.json()
        assert profile["customer_id"].startswith("cus_")
        assert profile["stage"] == "decision"
        assert profile["stage_since"].startswith("2026-03-03T15:00")
        assert profile["cart"] == [] and profile["cart_value"] == 0
        assert profile["channels"] == ["loyalty", "store", "web"]
        assert profile["last_touchpoints"]["store"]["event"] == "Order Completed"
        types = sorted(i["type"] for i in profile["identifiers"])
        assert types == ["anonymous_id", "email", "loyalty_card", "user_id"]
        masked = {i["type"]: i["masked"] for i in profile["identifiers"]}
        assert masked["email"] == "a***@example.nl"
        assert "traits" not in profile
        body = ok.text.lower()
        assert "ann@example.nl" not in body and "6012" not in body, "plaintext leaked"

        # the same profile by customer id, by another identifier, with Basic auth
        cid = profile["customer_id"]
        assert http.get(f"/v1/profiles/{cid}", headers=_basic(read_key)).json() == profile
        by_card = http.get("/v1/profiles/loyalty_card:6012%203456", headers=_bearer(read_key))
        assert by_card.json()["customer_id"] == cid

        path = "/v1/profiles/email:ann@example.nl"
        assert http.get(path).status_code == 401
        assert http.get(path, headers=_bearer("rk_unknown")).status_code == 401
        assert http.get(path, headers=_bearer(write_key)).status_code == 403
        assert http.get(path, headers=_basic(write_key)).status_code == 403
        unknown = http.get("/v1/profiles/email:nobody@example.nl", headers=_bearer(read_key))
        assert (unknown.status_code, unknown.json()["error"]) == (404, "not_found")
        assert http.get("/v1/profiles/cus_nobody", headers=_bearer(read_key)).status_code == 404
        assert http.get("/v1/profiles/ann", headers=_bearer(read_key)).status_code == 400

        # a read key cannot send events; the write key still can reach the write path
        track = {"messageId": "p-1", "anonymousId": "a-1", "event": "Product Viewed"}
        assert http.post("/v1/track", json=track, headers=_basic(read_key)).status_code == 401
        assert http.post("/v1/track", json=track | {"writeKey": read_key}).status_code == 401

        # revocation is immediate (no cache on the read path)
        revoke_read_key(ldb, "crm-profile-test")
        assert http.get(path, headers=_bearer(read_key)).status_code == 401

        metrics = http.get("/metrics").text
        assert 'cdp_collector_requests_total{endpoint="profiles",status="200"} 3.0' in metrics


def test_read_key_commands(loaded: Settings, ldb: psycopg.Connection[Any]) -> None:
    cli = make_invoke(loaded, sources)
    key = cli("sources", "add-read-key", "bi-export").stdout.strip()
    assert key.startswith("rk_") and len(key) > 30
    stored = ldb.execute("SELECT key_hash FROM read_keys WHERE name = 'bi-export'").fetchone()
    assert stored is not None and key not in stored[0], "only the hash is stored"
    assert "already exists" in cli("sources", "add-read-key", "bi-export", code=1).output
    assert "invalid read key name" in cli("sources", "add-read-key", "no spaces", code=1).output

    listed = orjson.loads(cli("sources", "list-read-keys", "--json").stdout)
    mine = next(k for k in listed if k["name"] == "bi-export")
    assert mine["revoked_at"] is None and set(mine) == {"name", "created_at", "revoked_at"}

    cli("sources", "revoke-read-key", "bi-export")
    listed = orjson.loads(cli("sources", "list-read-keys", "--json").stdout)
    assert next(k for k in listed if k["name"] == "bi-export")["revoked_at"] is not None
    assert "no read key named" in cli("sources", "revoke-read-key", "nope", code=1).output
    # write-key listing is unaffected by read keys
    assert "bi-export" not in cli("sources", "list", "--json").stdout
