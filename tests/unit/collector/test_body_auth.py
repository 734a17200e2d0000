"""Bounded body reading (gzip bombs), Basic auth parsing and the source cache."""

from __future__ import annotations

import asyncio
import base64
import gzip
from collections.abc import AsyncIterator

import pytest

from cdp.collector.auth import basic_key, body_key
from cdp.collector.body import BodyError, read_body
from cdp.collector.sources import Source, SourceCache, authenticate


async def _chunks(data: bytes, size: int = 4096) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def _read(data: bytes, limit: int, encoding: str | None = None) -> bytes:
    return asyncio.run(
        read_body(_chunks(data), limit=limit, encoding=encoding, content_length=None)
    )


def test_plain_and_gzip_bodies() -> None:
    assert _read(b"x" * 100, 100) == b"x" * 100
    assert _read(gzip.compress(b"y" * 1000), 1000, "gzip") == b"y" * 1000


def test_limits_apply_to_the_decompressed_size() -> None:
    with pytest.raises(BodyError) as info:
        _read(b"x" * 101, 100)
    assert info.value.status == 413
    bomb = gzip.compress(b"\0" * 50_000_000)  # ~50 KB on the wire, 50 MB inflated
    with pytest.raises(BodyError) as info:
        _read(bomb, 500 * 1024, "gzip")
    assert info.value.status == 413


def test_content_length_rejected_before_reading() -> None:
    async def never() -> AsyncIterator[bytes]:
        raise AssertionError("must not read")
        yield b""  # pragma: no cover

    with pytest.raises(BodyError) as info:
        asyncio.run(read_body(never(), limit=10, encoding=None, content_length="11"))
    assert info.value.status == 413


def test_bad_gzip_and_unknown_encoding() -> None:
    with pytest.raises(BodyError) as info:
        _read(b"not gzip at all", 100, "gzip")
    assert (info.value.status, info.value.reason) == (400, "invalid_gzip")
    with pytest.raises(BodyError) as info:
        _read(gzip.compress(b"abc" * 100)[:-12], 1000, "gzip")
    assert info.value.reason == "invalid_gzip"
    with pytest.raises(BodyError) as info:
        _read(b"x", 100, "br")
    assert info.value.status == 415


def test_basic_key() -> None:
    token = base64.b64encode(b"wk_abc:").decode()
    assert basic_key(f"Basic {token}") == "wk_abc"
    assert basic_key(f"basic {base64.b64encode(b'wk_abc').decode()}") == "wk_abc"
    assert basic_key("Bearer xyz") is None
    assert basic_key("Basic !!!") is None
    assert basic_key(f"Basic {base64.b64encode(b':pw').decode()}") is None
    assert basic_key(None) is None
    assert body_key({"writeKey": "k"}) == "k"
    assert body_key([1]) is None


def test_cache_expires_so_revocation_takes_effect_within_ttl() -> None:
    now = [0.0]
    table: dict[str, Source] = {"wk_1": Source("web-1", "web")}
    calls: list[str] = []

    def fetch(key: str) -> Source | None:
        calls.append(key)
        return table.get(key)

    cache = SourceCache(fetch, ttl=2.0, clock=lambda: now[0])
    assert authenticate(cache, "wk_1") == Source("web-1", "web")
    del table["wk_1"]  # revoked
    now[0] = 1.9
    assert cache.get("wk_1") is not None  # cached
    now[0] = 2.1
    assert cache.get("wk_1") is None
    assert authenticate(cache, "") is None
    assert calls == ["wk_1", "wk_1"]
    assert cache.peek("wk_1") == (True, None)  # misses are cached too


def test_cache_does_not_cache_failures() -> None:
    def fetch(_key: str) -> Source | None:
        raise OSError("db down")

    cache = SourceCache(fetch)
    with pytest.raises(OSError):
        cache.get("k")
    assert cache.peek("k") == (False, None)
