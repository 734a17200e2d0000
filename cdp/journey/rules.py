"""Journey rules: the marketer-edited ``schemas/journey.yaml``, validated and compiled.

Pydantic is used only at load time; the compiled :class:`JourneyRules` is a plain
frozen object with an event-name index so the per-event hot path is a dict lookup.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator
from pydantic import ValidationError as PydanticValidationError

from cdp.errors import ConfigError
from cdp.events.envelope import Channel
from cdp.yamlfile import describe_errors, read_yaml

Stage = Literal["awareness", "consideration", "decision", "service", "loyalty"]
STAGES: tuple[Stage, ...] = ("awareness", "consideration", "decision", "service", "loyalty")
STAGE_RANK: dict[str, int] = {s: i for i, s in enumerate(STAGES)}
# Stages whose signals only count at or after the customer's first purchase.
POST_PURCHASE_STAGES: frozenset[str] = frozenset({"service", "loyalty"})

# How many earliest occurrences a summary keeps per signal. Post-purchase signals keep
# more, because their stage needs "the earliest occurrence at/after the first purchase",
# which is exact as long as fewer than KEEP_POST_PURCHASE occurrences precede it.
KEEP_EARLIEST = 2
KEEP_POST_PURCHASE = 8

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "schemas" / "journey.yaml"


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, str | int | float | bool)


_NonEmptyStr = Annotated[str, Field(min_length=1, max_length=200)]
_Days = Annotated[float, Field(gt=0, le=3650, strict=True)]


class _SignalModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: _NonEmptyStr
    stage: Stage
    events: list[_NonEmptyStr] = Field(min_length=1)
    channels: list[Channel] | None = Field(default=None, min_length=1)
    where: dict[_NonEmptyStr, Any] | None = None

    @field_validator("where")
    @classmethod
    def _where_values(cls, where: dict[str, Any] | None) -> dict[str, Any] | None:
        for key, cond in (where or {}).items():
            if isinstance(cond, dict):
                values = cond.get("in")
                if set(cond) != {"in"} or not isinstance(values, list) or not values:
                    raise ValueError(f"{key}: expected a value or {{in: [non-empty list]}}")
                if not all(_is_scalar(v) for v in values):
                    raise ValueError(f"{key}: 'in' values must be strings, numbers or booleans")
            elif not _is_scalar(cond):
                raise ValueError(f"{key}: expected a value or {{in: [non-empty list]}}")
        return where


class _RulesModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Literal[1] = 1
    stuck_after_days: _Days = 14
    lapsed_after_days: _Days = 90
    purchase_events: list[_NonEmptyStr] = Field(default=["Order Completed"], min_length=1)
    cart_add_events: list[_NonEmptyStr] = Field(default=["Product Added"])
    cart_remove_events: list[_NonEmptyStr] = Field(default=["Product Removed"])
    repeat_purchase_is_loyalty: StrictBool = True
    signals: list[_SignalModel] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class Signal:
    """One compiled signal. ``where`` is ``((property, allowed values), ...)``."""

    name: str
    stage: Stage
    events: tuple[str, ...]
    channels: frozenset[str] | None = None
    where: tuple[tuple[str, tuple[Any, ...]], ...] = ()

    @property
    def keep(self) -> int:
        return KEEP_POST_PURCHASE if self.stage in POST_PURCHASE_STAGES else KEEP_EARLIEST

    def matches(self, channel: str, properties: Mapping[str, Any]) -> bool:
        """Channel and property filters (the event name was matched by the index).
        A missing property reads as ``None``."""
        if self.channels is not None and channel not in self.channels:
            return False
        return all(properties.get(key) in allowed for key, allowed in self.where)


@dataclass(frozen=True, slots=True)
class JourneyRules:
    signals: tuple[Signal, ...]
    stuck_after: timedelta = timedelta(days=14)
    lapsed_after: timedelta = timedelta(days=90)
    purchase_events: frozenset[str] = frozenset({"Order Completed"})
    cart_add_events: frozenset[str] = frozenset({"Product Added"})
    cart_remove_events: frozenset[str] = frozenset({"Product Removed"})
    repeat_purchase_is_loyalty: bool = True
    source: str = "<rules>"
    # Derived indexes (filled in __post_init__).
    by_event: Mapping[str, tuple[Signal, ...]] = field(
        default_factory=dict, compare=False, init=False, repr=False
    )
    signal_stage: Mapping[str, Stage] = field(
        default_factory=dict, compare=False, init=False, repr=False
    )

    def __post_init__(self) -> None:
        index: dict[str, list[Signal]] = {}
        for sig in self.signals:
            for name in sig.events:
                index.setdefault(name, []).append(sig)
        object.__setattr__(self, "by_event", {k: tuple(v) for k, v in index.items()})
        object.__setattr__(self, "signal_stage", {s.name: s.stage for s in self.signals})

    @classmethod
    def load(cls, path: str | Path | None = None) -> JourneyRules:
        """Read and validate a rules file (default: the repo's ``schemas/journey.yaml``)."""
        p = Path(path) if path is not None else DEFAULT_PATH
        return cls.from_dict(read_yaml(p, "journey rules"), source=str(p))

    @classmethod
    def default(cls) -> JourneyRules:
        """The repo's default rules, loaded once."""
        return _default_rules()

    @classmethod
    def from_dict(cls, data: Any, source: str = "<rules>") -> JourneyRules:
        if not isinstance(data, dict):
            raise ConfigError(
                f"{source}: journey rules must be a mapping, got {type(data).__name__}"
            )
        try:
            model = _RulesModel.model_validate(data)
        except PydanticValidationError as exc:
            raise ConfigError(f"{source}: {describe_errors(exc, data, 'signals')}") from exc
        _check_consistency(model, source)
        return cls(
            signals=tuple(_compile(s) for s in model.signals),
            stuck_after=timedelta(days=model.stuck_after_days),
            lapsed_after=timedelta(days=model.lapsed_after_days),
            purchase_events=frozenset(model.purchase_events),
            cart_add_events=frozenset(model.cart_add_events),
            cart_remove_events=frozenset(model.cart_remove_events),
            repeat_purchase_is_loyalty=model.repeat_purchase_is_loyalty,
            source=source,
        )


@lru_cache(maxsize=1)
def _default_rules() -> JourneyRules:
    return JourneyRules.load()


def _compile(s: _SignalModel) -> Signal:
    where = tuple(
        (key, tuple(cond["in"]) if isinstance(cond, dict) else (cond,))
        for key, cond in (s.where or {}).items()
    )
    channels = frozenset(c.value for c in s.channels) if s.channels is not None else None
    return Signal(s.name, s.stage, tuple(dict.fromkeys(s.events)), channels, where)


def _check_consistency(model: _RulesModel, source: str) -> None:
    seen: dict[str, int] = {}
    for i, sig in enumerate(model.signals):
        if sig.name in seen:
            raise ConfigError(
                f"{source}: signals[{i}] ({sig.name!r}): duplicate signal name "
                f"(also signals[{seen[sig.name]}])"
            )
        seen[sig.name] = i
    groups = {
        "purchase_events": set(model.purchase_events),
        "cart_add_events": set(model.cart_add_events),
        "cart_remove_events": set(model.cart_remove_events),
    }
    names = list(groups)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            both = groups[a] & groups[b]
            if both:
                raise ConfigError(f"{source}: {a} and {b} both list {sorted(both)}")
