"""One small generated population shared by the generator tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from cdp.generate import Generated, generate


@dataclass
class Sample:
    gen: Generated
    events: list[dict[str, Any]]


@pytest.fixture(scope="session")
def sample() -> Sample:
    gen = generate(400, 60, 7)
    return Sample(gen, list(gen.events()))
