"""Smoke test: 10,000 customers over 90 days generate well under a minute."""

from __future__ import annotations

import time

import orjson
import pytest

from cdp.generate import generate


@pytest.mark.slow
def test_ten_thousand_customers() -> None:
    started = time.perf_counter()
    gen = generate(10_000, 90, 42)
    size = n = 0
    for ev in gen.events():
        size += len(orjson.dumps(ev))
        n += 1
    seconds = time.perf_counter() - started
    print(f"\n10,000 customers: {n} events, {size / 1e6:.0f} MB JSON in {seconds:.1f}s")
    assert 300_000 < n < 600_000
    assert seconds < 120
