"""Activation rules: ``schemas/actions.yaml``, validated with pydantic and compiled into
plain frozen objects (:class:`ActionRules`). Every error is a :class:`ConfigError`
naming the file and the bad entry (``rules[1] ('abandoned_cart'): wait: ...``).

The rules file can be replaced with ``CDP_ACTIONS_RULES=/path/to/actions.yaml``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from cdp.errors import ConfigError
from cdp.yamlfile import describe_errors, read_yaml

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "schemas" / "actions.yaml"
RULES_ENV = "CDP_ACTIONS_RULES"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_Name = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")]
_Text = Annotated[str, Field(min_length=1, max_length=200)]
_Part = Literal["cart", "touchpoints", "preferred_channel", "identifiers", "stage"]
_DEFAULT_PAYLOAD: tuple[_Part, ...] = ("cart", "touchpoints", "preferred_channel")


def parse_duration(value: Any) -> timedelta:
    """``90s``, ``30m``, ``1h``, ``7d`` (or a number of seconds) as a timedelta."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like '1h', got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise ValueError(f"expected a duration like '30m', '1h' or '7d', got {value!r}")
    if seconds < 0 or seconds > 3650 * 86400:
        raise ValueError(f"duration out of range: {value!r}")
    return timedelta(seconds=seconds)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _QuietModel(_Strict):
    start: int = Field(ge=0, le=23, strict=True)
    end: int = Field(ge=0, le=23, strict=True)
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}") from exc
        return v


class _DefaultsModel(_Strict):
    lateness: Any = "0s"
    idle_partition: Any = "6h"
    consent_when_absent: Literal["allow", "deny"] = "allow"
    quiet_hours: _QuietModel | None = None

    @field_validator("lateness", "idle_partition")
    @classmethod
    def _lateness(cls, v: Any) -> Any:
        parse_duration(v)
        return v


class _DestinationModel(_Strict):
    type: Literal["kafka", "webhook"]
    url: str | None = None
    secret_env: str | None = None
    secret: str | None = None  # for local tests only; prefer secret_env
    max_attempts: int = Field(default=5, ge=1, le=50, strict=True)
    backoff: Any = "1s"
    timeout: Any = "10s"

    @model_validator(mode="after")
    def _webhook(self) -> _DestinationModel:
        if self.type == "webhook":
            if not self.url or not self.url.startswith(("http://", "https://")):
                raise ValueError("a webhook needs an http(s) url")
            if not (self.secret_env or self.secret):
                raise ValueError("a webhook needs secret_env (or secret) to sign its bodies")
        parse_duration(self.backoff)
        parse_duration(self.timeout)
        return self


class _TriggerModel(_Strict):
    event: _Text | None = None
    transition: _Text | None = None

    @model_validator(mode="after")
    def _one(self) -> _TriggerModel:
        if (self.event is None) == (self.transition is None):
            raise ValueError("a trigger needs exactly one of 'event' or 'transition'")
        return self


class _UnlessModel(_Strict):
    event: _Text
    within: Any

    @field_validator("within")
    @classmethod
    def _within(cls, v: Any) -> Any:
        parse_duration(v)
        return v


class _ConditionsModel(_Strict):
    identified: StrictBool = False
    marketing_consent: StrictBool = False


class _CapModel(_Strict):
    max: int = Field(ge=1, le=1000, strict=True)
    per: Any

    @field_validator("per")
    @classmethod
    def _per(cls, v: Any) -> Any:
        if parse_duration(v) <= timedelta(0):
            raise ValueError("per must be positive")
        return v


class _RuleModel(_Strict):
    name: _Name
    trigger: _TriggerModel
    action: _Name
    wait: Any = "0s"
    unless: _UnlessModel | None = None
    conditions: _ConditionsModel = Field(default_factory=_ConditionsModel)
    marketing: StrictBool = False
    quiet_hours: StrictBool | None = None  # default: marketing
    frequency_cap: _CapModel | None = None
    payload: list[_Part] = Field(default_factory=lambda: list(_DEFAULT_PAYLOAD))
    destinations: list[_Name] = Field(default_factory=lambda: ["kafka"], min_length=1)

    @field_validator("wait")
    @classmethod
    def _wait(cls, v: Any) -> Any:
        parse_duration(v)
        return v


class _FileModel(_Strict):
    version: Literal[1] = 1
    defaults: _DefaultsModel = Field(default_factory=_DefaultsModel)
    destinations: dict[_Name, _DestinationModel] = Field(default_factory=dict)
    rules: list[_RuleModel] = Field(min_length=1)


# -- compiled -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Hours ``[start, end)`` of the local day (``end < start`` wraps past midnight)."""

    start: int
    end: int
    timezone: str = "UTC"

    def _local(self, at: datetime) -> datetime:
        return at.astimezone(ZoneInfo(self.timezone))

    def contains(self, at: datetime) -> bool:
        if self.start == self.end:
            return False
        hour = self._local(at).hour
        if self.start < self.end:
            return self.start <= hour < self.end
        return hour >= self.start or hour < self.end

    def defer(self, at: datetime) -> datetime:
        """``at`` itself outside quiet hours; else the end of these quiet hours."""
        if not self.contains(at):
            return at
        local = self._local(at)
        end = local.replace(hour=self.end, minute=0, second=0, microsecond=0)
        if end <= local:
            end += timedelta(days=1)  # wall-clock arithmetic: the zone's offset is recomputed
        return end.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Cap:
    max: int
    per: timedelta


@dataclass(frozen=True, slots=True)
class Destination:
    name: str
    type: str  # kafka | webhook
    url: str | None = None
    secret_env: str | None = None
    secret: str | None = field(default=None, repr=False)
    max_attempts: int = 5
    backoff: timedelta = timedelta(seconds=1)
    timeout: timedelta = timedelta(seconds=10)

    def signing_secret(self) -> bytes:
        """The HMAC key: the environment variable ``secret_env``, else ``secret``."""
        value = os.environ.get(self.secret_env) if self.secret_env else None
        value = value or self.secret
        if not value:
            raise ConfigError(f"destination {self.name!r}: ${self.secret_env} is not set")
        return value.encode()


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    action: str
    trigger_event: str | None = None
    trigger_transition: str | None = None
    wait: timedelta = timedelta(0)
    unless_event: str | None = None
    unless_within: timedelta = timedelta(0)
    identified: bool = False
    consent: bool = False  # marketing consent required
    marketing: bool = False
    quiet_hours: bool = False
    cap: Cap | None = None
    payload: tuple[str, ...] = ("cart", "touchpoints", "preferred_channel")
    destinations: tuple[str, ...] = ("kafka",)


@dataclass(frozen=True, slots=True)
class ActionRules:
    rules: tuple[Rule, ...]
    destinations: Mapping[str, Destination] = field(default_factory=dict)
    lateness: timedelta = timedelta(0)
    idle_partition: timedelta = timedelta(hours=6)
    consent_when_absent: bool = True
    quiet: QuietHours | None = None
    source: str = "<rules>"
    by_name: Mapping[str, Rule] = field(default_factory=dict, init=False, compare=False)
    by_event: Mapping[str, tuple[Rule, ...]] = field(
        default_factory=dict, init=False, compare=False
    )
    by_transition: Mapping[str, tuple[Rule, ...]] = field(
        default_factory=dict, init=False, compare=False
    )
    cancel_events: frozenset[str] = field(default=frozenset(), init=False, compare=False)

    def __post_init__(self) -> None:
        ev: dict[str, list[Rule]] = {}
        tr: dict[str, list[Rule]] = {}
        for r in self.rules:
            if r.trigger_event is not None:
                ev.setdefault(r.trigger_event, []).append(r)
            if r.trigger_transition is not None:
                tr.setdefault(r.trigger_transition, []).append(r)
        object.__setattr__(self, "by_name", {r.name: r for r in self.rules})
        object.__setattr__(self, "by_event", {k: tuple(v) for k, v in ev.items()})
        object.__setattr__(self, "by_transition", {k: tuple(v) for k, v in tr.items()})
        cancels = frozenset(r.unless_event for r in self.rules if r.unless_event)
        object.__setattr__(self, "cancel_events", cancels)

    def webhooks(self) -> dict[str, Destination]:
        return {n: d for n, d in self.destinations.items() if d.type == "webhook"}

    # -- loading ------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path | None = None) -> ActionRules:
        """``path``, else ``$CDP_ACTIONS_RULES``, else ``schemas/actions.yaml``."""
        env = os.environ.get(RULES_ENV)
        p = Path(path) if path is not None else Path(env) if env else DEFAULT_PATH
        return cls.from_dict(read_yaml(p, "action rules"), source=str(p))

    @classmethod
    def from_dict(cls, data: Any, source: str = "<rules>") -> ActionRules:
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: action rules must be a mapping")
        try:
            model = _FileModel.model_validate(data)
        except PydanticValidationError as exc:
            problems = describe_errors(exc, data, "rules", ("destinations",))
            raise ConfigError(f"{source}: {problems}") from exc
        dests = {"kafka": Destination("kafka", "kafka")}
        for name, d in model.destinations.items():
            dests[name] = Destination(
                name, d.type, d.url, d.secret_env, d.secret, d.max_attempts,
                parse_duration(d.backoff), parse_duration(d.timeout),
            )  # fmt: skip
        seen: dict[str, int] = {}
        rules: list[Rule] = []
        for i, r in enumerate(model.rules):
            where = f"rules[{i}] ({r.name!r})"
            if r.name in seen:
                raise ConfigError(f"{source}: {where}: duplicate rule name (rules[{seen[r.name]}])")
            seen[r.name] = i
            for dest in r.destinations:
                if dest not in dests:
                    raise ConfigError(f"{source}: {where}: destinations: unknown {dest!r}")
            rules.append(
                Rule(
                    name=r.name,
                    action=r.action,
                    trigger_event=r.trigger.event,
                    trigger_transition=r.trigger.transition,
                    wait=parse_duration(r.wait),
                    unless_event=r.unless.event if r.unless else None,
                    unless_within=parse_duration(r.unless.within) if r.unless else timedelta(0),
                    identified=r.conditions.identified,
                    consent=r.marketing or r.conditions.marketing_consent,
                    marketing=r.marketing,
                    quiet_hours=r.marketing if r.quiet_hours is None else r.quiet_hours,
                    cap=Cap(r.frequency_cap.max, parse_duration(r.frequency_cap.per))
                    if r.frequency_cap
                    else None,
                    payload=tuple(dict.fromkeys(r.payload)),
                    destinations=tuple(dict.fromkeys(r.destinations)),
                )
            )
        q = model.defaults.quiet_hours
        return cls(
            rules=tuple(rules),
            destinations=dests,
            lateness=parse_duration(model.defaults.lateness),
            idle_partition=parse_duration(model.defaults.idle_partition),
            consent_when_absent=model.defaults.consent_when_absent == "allow",
            quiet=QuietHours(q.start, q.end, q.timezone) if q else None,
            source=source,
        )
