"""Merge rules (``schemas/identity.yaml``) and the event → usable nodes step."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from cdp.errors import ConfigError
from cdp.events.envelope import CHANNELS, Event
from cdp.identity.hashing import IdentifierHasher
from cdp.identity.model import Node
from cdp.identity.normalize import normalize

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "schemas" / "identity.yaml"

# Kept equal to schemas/identity.yaml (a test checks it), so MergeRules() needs no I/O.
DEFAULT_LIMITS: Mapping[str, int] = MappingProxyType(
    {
        "user_id": 1,
        "loyalty_card": 1,
        "pos_customer_id": 1,
        "email": 5,
        "phone": 5,
        "device_id": 50,
        "cookie_id": 200,
        "anonymous_id": 200,
    }
)
DEFAULT_OTHER_LIMIT = 100
DEFAULT_BLOCKED_EXACT: frozenset[str] = frozenset(
    {
        "",
        "null",
        "none",
        "nil",
        "nan",
        "undefined",
        "0",
        "-1",
        "anonymous",
        "unknown",
        "guest",
        "true",
        "false",
        "n/a",
        "na",
        "-",
        "[object object]",
        "test@example.com",
        "test@test.com",
        "noreply@example.com",
    }
)
DEFAULT_BLOCKED_REGEX: tuple[str, ...] = (
    r"^0+$",
    r"^-+$",
    r"^\s*$",
    r"^x+$",
    r"^\*+$",
    r"^\.+$",
    r"^(\d)\1{5,}$",
)
DEFAULT_NON_LINKING: Mapping[str, frozenset[str]] = MappingProxyType(
    {"device_id": frozenset({"store"})}
)

DROP_BLOCKED = "blocked"
DROP_MALFORMED = "malformed"
DROP_NON_LINKING = "non_linking"


@dataclass(frozen=True)
class MergeRules:
    """Which identifiers may link customers, and how many of a type one customer may
    hold (``limits``; types not listed use ``other_limit``).

    ``blocked_exact`` is compared case-insensitively after stripping; ``blocked_regex``
    patterns are searched case-insensitively. ``non_linking`` maps an identifier type
    to the channels on which it links nothing (a device on ``store`` is a kiosk).
    """

    limits: Mapping[str, int] = field(default_factory=lambda: DEFAULT_LIMITS)
    other_limit: int = DEFAULT_OTHER_LIMIT
    blocked_exact: frozenset[str] = DEFAULT_BLOCKED_EXACT
    blocked_regex: tuple[str, ...] = DEFAULT_BLOCKED_REGEX
    non_linking: Mapping[str, frozenset[str]] = field(default_factory=lambda: DEFAULT_NON_LINKING)
    _pattern: re.Pattern[str] | None = field(init=False, repr=False, compare=False)
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for id_type, limit in [*self.limits.items(), ("other", self.other_limit)]:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise ConfigError(f"limit for {id_type!r} must be a positive integer")
        # Freeze caller-supplied dicts/sets so the rules stay immutable.
        object.__setattr__(self, "limits", MappingProxyType(dict(self.limits)))
        object.__setattr__(
            self, "blocked_exact", frozenset(v.strip().lower() for v in self.blocked_exact)
        )
        object.__setattr__(self, "blocked_regex", tuple(self.blocked_regex))
        object.__setattr__(
            self,
            "non_linking",
            MappingProxyType({k: frozenset(v) for k, v in self.non_linking.items()}),
        )
        pattern = None
        if self.blocked_regex:
            try:
                pattern = re.compile(
                    "|".join(f"(?:{p})" for p in self.blocked_regex), re.IGNORECASE
                )
            except re.error as exc:
                raise ConfigError(f"invalid blocked_regex: {exc}") from exc
        object.__setattr__(self, "_pattern", pattern)
        key = (
            tuple(sorted(self.limits.items())),
            self.other_limit,
            self.blocked_exact,
            self.blocked_regex,
            tuple(sorted(self.non_linking.items())),
        )
        object.__setattr__(self, "_hash", hash(key))

    def __hash__(self) -> int:
        # Explicit because the mapping fields are not hashable; rules are cache keys.
        return self._hash

    def limit(self, id_type: str) -> int:
        return self.limits.get(id_type, self.other_limit)

    def is_blocked(self, value: str) -> bool:
        if value.strip().lower() in self.blocked_exact:
            return True
        return self._pattern is not None and self._pattern.search(value) is not None

    def links(self, id_type: str, channel: str) -> bool:
        """False when ``id_type`` seen on ``channel`` must not link anything."""
        channels = self.non_linking.get(id_type)
        return channels is None or channel not in channels

    @classmethod
    def load(cls, path: Path | str | None = None) -> MergeRules:
        """Rules from a YAML file (default: the repository's ``schemas/identity.yaml``).

        Raises :class:`~cdp.errors.ConfigError` on a missing, unparsable or invalid file.
        """
        source = Path(path) if path is not None else DEFAULT_PATH
        try:
            data = yaml.safe_load(source.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read identity rules {source}: {exc}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"invalid YAML in identity rules {source}: {exc}") from exc
        try:
            return cls.from_mapping(data)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from exc

    @classmethod
    def from_mapping(cls, data: Any) -> MergeRules:
        """Rules from parsed YAML. ``limits`` entries override the defaults one by one;
        the other sections, when present, replace the defaults; omitted ones keep them."""
        if not isinstance(data, dict):
            raise ConfigError("identity rules must be a mapping")
        unknown = set(data) - {"limits", "blocked_exact", "blocked_regex", "non_linking"}
        if unknown:
            raise ConfigError(f"unknown identity rules keys: {sorted(unknown)}")
        kwargs: dict[str, Any] = {}
        if "limits" in data:
            # Per key over the defaults, so tuning one type cannot silently drop
            # the user_id/loyalty_card limits of 1.
            limits = {**DEFAULT_LIMITS, **_mapping(data["limits"], "limits")}
            if "other" in limits:
                kwargs["other_limit"] = limits.pop("other")
            kwargs["limits"] = limits
        if "blocked_exact" in data:
            kwargs["blocked_exact"] = frozenset(_strings(data["blocked_exact"], "blocked_exact"))
        if "blocked_regex" in data:
            kwargs["blocked_regex"] = tuple(_strings(data["blocked_regex"], "blocked_regex"))
        if "non_linking" in data:
            non_linking: dict[str, frozenset[str]] = {}
            for id_type, channels in _mapping(data["non_linking"], "non_linking").items():
                names = frozenset(_strings(channels, f"non_linking.{id_type}"))
                bad = names - set(CHANNELS)
                if bad:
                    raise ConfigError(f"non_linking.{id_type}: unknown channels {sorted(bad)}")
                non_linking[str(id_type)] = names
            kwargs["non_linking"] = non_linking
        return cls(**kwargs)


def _mapping(value: Any, name: str) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{name} must be a mapping")
    return value


def _strings(value: Any, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{name} must be a list of strings")
    return value


def resolve_identifier(
    id_type: str,
    raw: str,
    channel: str,
    rules: MergeRules,
    hasher: IdentifierHasher,
    default_region: str,
) -> Node | str:
    """The node for one raw identifier, or the reason it is dropped."""
    if not rules.links(id_type, channel):
        return DROP_NON_LINKING
    return _resolve(id_type, raw, rules, hasher, default_region)


# The whole raw → node step is cached: identifiers recur constantly in a stream and
# a hit costs a fraction of the blocked checks, normalization, HMAC and Node().
@lru_cache(maxsize=1 << 18)
def _resolve(
    id_type: str, raw: str, rules: MergeRules, hasher: IdentifierHasher, default_region: str
) -> Node | str:
    if rules.is_blocked(raw):
        return DROP_BLOCKED
    value = normalize(id_type, raw, default_region)
    if value is None:
        return DROP_MALFORMED
    if rules.is_blocked(value):
        return DROP_BLOCKED
    return Node(id_type, hasher.node_id(id_type, value))


def _collect(
    pairs: Iterable[tuple[str, str]],
    channel: str,
    rules: MergeRules,
    hasher: IdentifierHasher,
    default_region: str,
) -> tuple[list[Node], Counter[str]]:
    nodes: list[Node] = []
    seen: set[str] = set()
    dropped: Counter[str] = Counter()
    for id_type, raw in pairs:
        result = resolve_identifier(id_type, raw, channel, rules, hasher, default_region)
        if isinstance(result, str):
            dropped[result] += 1
        elif result.node_id not in seen:
            seen.add(result.node_id)
            nodes.append(result)
    return nodes, dropped


def usable_nodes(
    event: Event, rules: MergeRules, hasher: IdentifierHasher, default_region: str
) -> tuple[list[Node], Counter[str]]:
    """The event's linkable nodes (deduplicated) and a count of dropped values by
    reason (``blocked``, ``malformed``, ``non_linking``); the caller reports those."""
    return _collect(event.identifier_pairs(), event.channel.value, rules, hasher, default_region)


def alias_candidates(
    previous_id: str,
    channel: str,
    rules: MergeRules,
    hasher: IdentifierHasher,
    default_region: str,
) -> tuple[tuple[Node, ...], Counter[str]]:
    """``previousId`` hashed as ``user_id`` and as ``anonymous_id`` (preference order).
    When neither is usable, the drop is counted once."""
    nodes, dropped = _collect(
        [("user_id", previous_id), ("anonymous_id", previous_id)],
        channel,
        rules,
        hasher,
        default_region,
    )
    if nodes:
        return tuple(nodes), Counter()
    return (), Counter({next(iter(dropped)): 1})


def clear_caches() -> None:
    """Drop the memoized identifier resolutions (benchmarks, tests, rule reloads)."""
    _resolve.cache_clear()
    normalize.cache_clear()
