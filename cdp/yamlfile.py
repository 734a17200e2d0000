"""Reading the YAML configuration files (rules) with errors that name the file."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError as PydanticValidationError

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


def describe_errors(
    exc: PydanticValidationError,
    data: Mapping[str, Any],
    entries: str,
    mappings: tuple[str, ...] = (),
) -> str:
    """Pydantic errors of a rules file, one per problem, located for a person:
    ``rules[1] ('abandoned_cart'): wait: message`` for the list ``entries`` (its items
    named by their ``name``), ``destinations.crm: url: message`` for ``mappings``."""
    parts: list[str] = []
    for err in exc.errors():
        loc = list(err["loc"])
        where = ""
        if len(loc) >= 2 and loc[0] == entries and isinstance(loc[1], int):
            idx, raw = loc[1], data.get(entries)
            name = None
            if isinstance(raw, list) and idx < len(raw) and isinstance(raw[idx], dict):
                name = raw[idx].get("name")
            where = f"{entries}[{idx}]" + (f" ({name!r})" if name else "")
            loc = loc[2:]
        elif len(loc) >= 2 and loc[0] in mappings:
            where = f"{loc[0]}.{loc[1]}"
            loc = loc[2:]
        path = ".".join(str(p) for p in loc)
        head = ": ".join(x for x in (where, path) if x)
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{head}: {msg}" if head else msg)
    return "; ".join(dict.fromkeys(parts))
