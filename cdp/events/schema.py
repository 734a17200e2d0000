"""JSON Schema of the envelope, generated from the pydantic model.

The files in ``schemas/`` are checked in; ``cdp schemas generate`` rewrites them and a
test fails when they drift from the model.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson

from cdp.config import PROJECT_ROOT
from cdp.events.envelope import CHANNELS, KEY_ORDER, SCHEMA_VERSION, Event

SCHEMAS_DIR = PROJECT_ROOT / "schemas"


def envelope_schema() -> dict[str, Any]:
    schema = Event.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://cdp.dev/schemas/touchpoint.schema.json"
    schema["description"] = (
        f"cdp touchpoint envelope v{SCHEMA_VERSION}: Segment spec fields plus channel and "
        f"typed identifiers. Kafka key: the first present of {', '.join(KEY_ORDER)} as "
        "'type:value'. Headers: schema_version, source."
    )
    return schema


def channel_schema(channel: str) -> dict[str, Any]:
    schema = copy.deepcopy(envelope_schema())
    schema["$id"] = f"https://cdp.dev/schemas/touchpoints.{channel}.schema.json"
    schema["title"] = f"cdp.touchpoints.{channel}"
    schema["properties"]["channel"] = {"const": channel}
    return schema


def rendered() -> dict[str, bytes]:
    """File name → content for every generated schema file."""
    files = {"touchpoint.schema.json": envelope_schema()}
    for channel in CHANNELS:
        files[f"touchpoints.{channel}.schema.json"] = channel_schema(channel)
    opts = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
    return {name: orjson.dumps(s, option=opts) + b"\n" for name, s in files.items()}


def write(directory: Path = SCHEMAS_DIR) -> list[Path]:
    paths = []
    for name, content in rendered().items():
        path = directory / name
        path.write_bytes(content)
        paths.append(path)
    return paths
