"""Chaos: fuzz the HTTP collector with generated payloads of every kind of wrongness.
No 5xx; accepted + rejected = sent; every accepted event is on Kafka.

``CDP_FUZZ_PAYLOADS`` sets the count (default 10,000)."""

from __future__ import annotations

import base64
import gzip
import os
import random
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import orjson
import pytest

from cdp.config import Settings
from cdp.kafka.reader import read_topic
from tests.integration.collector.conftest import keys, serve, serve_app  # noqa: F401

N = int(os.environ.get("CDP_FUZZ_PAYLOADS", "10000"))


def _valid(rng: random.Random) -> dict[str, Any]:
    return {
        "type": "track", "event": rng.choice(["Product Viewed", "Order Completed", "x" * 50]),
        "messageId": uuid.UUID(int=rng.getrandbits(128)).hex,
        "anonymousId": f"a-{rng.randrange(1000)}", "timestamp": "2026-03-01T10:00:00Z",
        "properties": {"price": rng.random() * 100},
    }  # fmt: skip


def payload(rng: random.Random, i: int) -> tuple[str, bytes, dict[str, str]]:
    """(path, body, extra headers) for payload number i: mostly hostile."""
    kind = i % 10
    ev = _valid(rng)
    headers: dict[str, str] = {}
    if kind == 0:  # valid
        body = orjson.dumps(ev)
    elif kind == 1:  # oversized event
        ev["properties"] = {"blob": "x" * rng.randrange(33_000, 60_000)}
        body = orjson.dumps(ev)
    elif kind == 2:  # malformed JSON
        body = orjson.dumps(ev)[: rng.randrange(1, 40)]
    elif kind == 3:  # invalid UTF-8
        body = orjson.dumps(ev).replace(b"a-", b"\xff\xfe", 1)
    elif kind == 4:  # NUL bytes
        ev["event"] = "a\x00b"
        body = orjson.dumps(ev)
    elif kind == 5:  # deep nesting
        nested: Any = 1
        for _ in range(rng.randrange(20, 200)):
            nested = [nested]
        ev["properties"] = {"deep": nested}
        body = orjson.dumps(ev)
    elif kind == 6:  # thousands of keys
        ev["traits"] = {f"k{j}": j for j in range(rng.randrange(1000, 3000))}
        body = orjson.dumps(ev)
    elif kind == 7:  # SQL-looking trait names and values
        ev["traits"] = {"'; DROP TABLE identities; --": "1 OR 1=1", "email": "x' OR '1'='1"}
        body = orjson.dumps(ev)
    elif kind == 8:  # wrong types
        ev[rng.choice(["messageId", "timestamp", "properties", "anonymousId"])] = rng.choice(
            [12, [1, 2], {"a": 1}, None, True]
        )
        body = orjson.dumps(ev)
    else:  # a gzip batch, sometimes with a bad item
        items = [_valid(rng) for _ in range(rng.randrange(1, 20))]
        if rng.random() < 0.3:
            items[0]["timestamp"] = "yesterday"
        body = gzip.compress(orjson.dumps({"batch": items}))
        headers["Content-Encoding"] = "gzip"
        return "/v1/batch", body, headers
    return "/v1/track", body, headers


@pytest.mark.timeout(1200)
def test_fuzz_collector(
    settings: Settings,
    topics: dict[str, str],
    keys: dict[str, str],  # noqa: F811
) -> None:
    auth = "Basic " + base64.b64encode(f"{keys['web']}:".encode()).decode()
    statuses: Counter[int] = Counter()
    accepted_ids: set[str] = set()

    def send(client: httpx.Client, i: int) -> tuple[int, set[str]]:
        path, body, headers = payload(random.Random(i), i)
        headers |= {"Authorization": auth, "Content-Type": "application/json"}
        status = client.post(path, content=body, headers=headers).status_code
        if status != 200:
            return status, set()
        doc = orjson.loads(gzip.decompress(body) if path == "/v1/batch" else body)
        return status, {e["messageId"] for e in doc.get("batch", [doc])}

    # several clients at once, as real trackers send; the server must stay correct
    with serve_app(settings) as url, httpx.Client(base_url=url, timeout=60) as client, \
            ThreadPoolExecutor(8) as pool:  # fmt: skip
        for status, ids in pool.map(lambda i: send(client, i), range(N)):
            statuses[status] += 1
            accepted_ids |= ids
    print(f"\n[chaos] collector fuzz: sent={N} statuses={dict(sorted(statuses.items()))}")
    assert not [s for s in statuses if s >= 500], statuses
    assert sum(statuses.values()) == N
    assert statuses[200] > 0 and sum(n for s, n in statuses.items() if 400 <= s < 500) > 0
    on_kafka = {
        orjson.loads(m.value())["messageId"]
        for m in read_topic(settings, settings.topic("touchpoints.web"))
    }
    assert accepted_ids <= on_kafka, f"{len(accepted_ids - on_kafka)} accepted events missing"
