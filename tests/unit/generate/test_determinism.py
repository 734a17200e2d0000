"""Same seed, same bytes; different seed, different output; no wall clock."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from datetime import UTC, datetime

import orjson

from cdp.generate import DEFAULT_START, generate

from .conftest import Sample

_DIGEST = (
    "import hashlib, orjson\n"
    "from cdp.generate import generate\n"
    "h = hashlib.sha256()\n"
    "for ev in generate(60, 20, 3).events(): h.update(orjson.dumps(ev))\n"
    "print(h.hexdigest())\n"
)


def _dump(customers: int, days: int, seed: int) -> list[bytes]:
    return [orjson.dumps(ev) for ev in generate(customers, days, seed).events()]


def test_same_seed_same_output() -> None:
    assert _dump(80, 30, 1) == _dump(80, 30, 1)


def test_different_seed_different_output() -> None:
    a, b = _dump(80, 30, 1), _dump(80, 30, 2)
    assert a != b
    ids_a = {orjson.loads(x)["messageId"] for x in a}
    ids_b = {orjson.loads(x)["messageId"] for x in b}
    assert not ids_a & ids_b


def test_events_rerun_is_identical(sample: Sample) -> None:
    again = list(sample.gen.events())
    assert [orjson.dumps(e) for e in again] == [orjson.dumps(e) for e in sample.events]


def test_independent_of_hash_seed() -> None:
    """Set iteration order (PYTHONHASHSEED) must not leak into the output."""
    digests = set()
    for hash_seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        run = subprocess.run(
            [sys.executable, "-c", _DIGEST], env=env, capture_output=True, text=True, check=True
        )
        digests.add(run.stdout.strip())
    h = hashlib.sha256()
    for ev in generate(60, 20, 3).events():
        h.update(orjson.dumps(ev))
    digests.add(h.hexdigest())
    assert len(digests) == 1


def test_fixed_default_start_and_custom_start() -> None:
    first = min(datetime.fromisoformat(e["timestamp"]) for e in generate(30, 5, 1).events())
    assert DEFAULT_START <= first < DEFAULT_START.replace(day=DEFAULT_START.day + 5)
    start = datetime(2024, 3, 1)  # naive: taken as UTC
    stamps = [datetime.fromisoformat(e["timestamp"]) for e in generate(30, 5, 1, start).events()]
    assert min(stamps) >= start.replace(tzinfo=UTC)
    assert all(s.tzinfo is not None for s in stamps)
