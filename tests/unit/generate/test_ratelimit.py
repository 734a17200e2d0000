"""The token bucket with a fake clock."""

from __future__ import annotations

import pytest

from cdp.generate.ratelimit import TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_average_rate_and_burst() -> None:
    clock = Clock()
    bucket = TokenBucket(100, burst=10, clock=clock, sleep=clock.sleep)
    for _ in range(10):
        bucket.take()
    assert clock.now == 0  # the burst is free
    for _ in range(1000):
        bucket.take()
    assert clock.now == pytest.approx(10.0, rel=0.01)


def test_rejects_bad_rate() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0)
