"""Reading the YAML configuration files (rules) with errors that name the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from cdp.errors import ConfigError


def read_yaml(path: Path, what: str) -> Any:
    """The parsed document at ``path``; a :class:`ConfigError` naming the file when it
    cannot be read or is not YAML (``what`` says what the file holds)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
