"""The per-customer journey summary: an order-independent fold of a customer's events.

Every field is merged with min / max / bounded "k smallest" / set union / sum, so
:meth:`Summary.combine` is commutative and associative and the summary of a set of
events does not depend on the order they arrived in. All of it is idempotent
(combining a single-event summary twice changes nothing) except the counters
(signal counts, purchase count, revenue), which are sums: de-duplication by messageId
happens upstream.

Times are kept as integer microseconds since the Unix epoch (UTC): cheap to compare,
exact in JSON. Ties between equal times are broken by messageId, so "earliest" and
"latest" are total orders. Summaries are immutable by convention; ``combine`` may
return (and share parts of) its arguments.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, TypeVar

from cdp.events.envelope import Event
from cdp.journey.rules import KEEP_EARLIEST, JourneyRules

Point = tuple[int, str]  # (µs since epoch, messageId)
Touch = tuple[int, str, str]  # (µs, messageId, channel or event label)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_ZERO = Decimal(0)
# Non-track calls that are touchpoints, and the event name signals see for them.
_LABELS = {"page": "Page Viewed", "screen": "Screen Viewed"}

V = TypeVar("V")
P = TypeVar("P", Point, Touch)


def to_micros(ts: datetime) -> int:
    if ts.tzinfo is None:
        raise ValueError(f"naive datetime {ts!r}: journey times must carry a zone")
    return (ts - EPOCH) // _US


def from_micros(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def event_label(event: Event) -> str | None:
    """The name signals match on: the track event name, "Page Viewed" for page calls,
    "Screen Viewed" for screen calls; None for identify/alias/group (not touchpoints)."""
    if event.type == "track":
        return event.event
    return _LABELS.get(event.type)


class SignalStats:
    """Occurrences of one signal: count, the ``keep`` earliest points, the latest."""

    __slots__ = ("count", "earliest", "keep", "latest")

    def __init__(self, count: int, earliest: tuple[Point, ...], latest: Point, keep: int) -> None:
        self.count = count
        self.earliest = earliest
        self.latest = latest
        self.keep = keep

    def merge(self, other: SignalStats) -> SignalStats:
        keep = max(self.keep, other.keep)
        return SignalStats(
            self.count + other.count,
            _smallest(self.earliest, other.earliest, keep),
            max(self.latest, other.latest),
            keep,
        )

    def first_at_or_after(self, us: int) -> Point | None:
        """Earliest kept occurrence with time >= ``us`` (falls back to the latest)."""
        for p in self.earliest:
            if p[0] >= us:
                return p
        return self.latest if self.latest[0] >= us else None

    def _key(self) -> tuple[Any, ...]:
        return (self.count, self.earliest, self.latest, self.keep)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SignalStats) and self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"SignalStats{self._key()!r}"


class CartLine:
    """One product's cart history: the latest add (whose quantity/price/name win) and
    the latest removal. In the cart iff added later than removed and than the last
    purchase, so the order the events arrive in does not matter."""

    __slots__ = ("added", "name", "price", "quantity", "removed")

    def __init__(
        self,
        added: Point | None,
        removed: Point | None,
        quantity: float = 1,
        price: float | None = None,
        name: str | None = None,
    ) -> None:
        self.added = added
        self.removed = removed
        self.quantity = quantity
        self.price = price
        self.name = name

    def merge(self, other: CartLine) -> CartLine:
        newest = self if _gt(self.added, other.added) or other.added is None else other
        removed = _max_opt(self.removed, other.removed)
        if newest.removed == removed:
            return newest
        return CartLine(newest.added, removed, newest.quantity, newest.price, newest.name)

    def _key(self) -> tuple[Any, ...]:
        return (self.added, self.removed, self.quantity, self.price, self.name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CartLine) and self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"CartLine{self._key()!r}"


class Summary:
    """Per-customer journey state. Build with :meth:`from_event`, merge with
    :meth:`combine`; ``Summary()`` is the identity element."""

    __slots__ = (
        "cart_lines",
        "channels",
        "first",
        "last",
        "last_purchase",
        "purchase_count",
        "purchases",
        "revenue",
        "signals",
        "touch",
    )

    def __init__(
        self,
        signals: Mapping[str, SignalStats] | None = None,
        purchase_count: int = 0,
        purchases: tuple[Point, ...] = (),
        last_purchase: Point | None = None,
        revenue: Decimal = _ZERO,
        channels: frozenset[str] = frozenset(),
        first: Touch | None = None,
        last: Touch | None = None,
        touch: Mapping[str, Touch] | None = None,
        cart_lines: Mapping[str, CartLine] | None = None,
    ) -> None:
        self.signals: Mapping[str, SignalStats] = signals or {}
        self.purchase_count = purchase_count
        self.purchases = purchases  # the KEEP_EARLIEST earliest purchases
        self.last_purchase = last_purchase
        self.revenue = revenue
        self.channels = channels
        self.first = first  # (time, messageId, channel) of the earliest event
        self.last = last  # ... of the latest event
        self.touch: Mapping[str, Touch] = touch or {}  # channel -> (time, mid, label)
        self.cart_lines: Mapping[str, CartLine] = cart_lines or {}

    # -- building ---------------------------------------------------------------------

    @classmethod
    def from_event(cls, event: Event, rules: JourneyRules) -> Summary:
        t = to_micros(event.timestamp)
        mid = event.messageId
        ch = event.channel.value
        point = (t, mid)
        label = event.event if event.type == "track" else _LABELS.get(event.type)
        s = cls(channels=frozenset((ch,)), first=(t, mid, ch), last=(t, mid, ch))
        if label is None:
            return s
        s.touch = {ch: (t, mid, label)}
        props = event.properties
        candidates = rules.by_event.get(label)
        if candidates:
            s.signals = {
                sig.name: SignalStats(1, (point,), point, sig.keep)
                for sig in candidates
                if sig.matches(ch, props)
            }
        if label in rules.purchase_events:
            s.purchase_count = 1
            s.purchases = (point,)
            s.last_purchase = point
            revenue = props.get("revenue")
            s.revenue = _money(props.get("total") if revenue is None else revenue)
        elif label in rules.cart_add_events or label in rules.cart_remove_events:
            pid = props.get("product_id", props.get("sku"))
            if pid is not None and not isinstance(pid, dict | list):
                line = (
                    CartLine(
                        point,
                        None,
                        1 if (qty := _number(props.get("quantity"))) is None else qty,
                        _number(props.get("price")),
                        name if isinstance(name := props.get("name"), str) else None,
                    )
                    if label in rules.cart_add_events
                    else CartLine(None, point)
                )
                s.cart_lines = {str(pid): line}
        return s

    @classmethod
    def of(cls, events: Iterable[Event], rules: JourneyRules) -> Summary:
        """Summarise many events (any order)."""
        s = cls()
        for e in events:
            s = cls.combine(s, cls.from_event(e, rules))
        return s

    @staticmethod
    def combine(a: Summary, b: Summary) -> Summary:
        """Merge two summaries: commutative, associative, ``combine(s, Summary()) == s``."""
        if b.first is None:
            return a
        if a.first is None:
            return b
        return Summary(
            _merge_maps(a.signals, b.signals, SignalStats.merge),
            a.purchase_count + b.purchase_count,
            _smallest(a.purchases, b.purchases, KEEP_EARLIEST),
            _max_opt(a.last_purchase, b.last_purchase),
            a.revenue + b.revenue,
            a.channels if b.channels <= a.channels else a.channels | b.channels,
            min(a.first, b.first),
            _max_opt(a.last, b.last),
            _merge_maps(a.touch, b.touch, max),
            _merge_maps(a.cart_lines, b.cart_lines, CartLine.merge),
        )

    # -- reading ----------------------------------------------------------------------

    @property
    def is_empty(self) -> bool:
        return self.first is None

    @property
    def first_seen(self) -> datetime | None:
        return from_micros(self.first[0]) if self.first else None

    @property
    def last_seen(self) -> datetime | None:
        return from_micros(self.last[0]) if self.last else None

    @property
    def first_channel(self) -> str | None:
        return self.first[2] if self.first else None

    @property
    def last_channel(self) -> str | None:
        return self.last[2] if self.last else None

    @property
    def last_touch_at(self) -> datetime | None:
        """Latest touchpoint (track/page/screen); the latest event if there is none."""
        if self.touch:
            return from_micros(max(v[0] for v in self.touch.values()))
        return self.last_seen

    def cart(self) -> list[dict[str, Any]]:
        """Products in the cart, by product_id; JSON-able (``added_at`` is ISO-8601)."""
        return [
            {
                "product_id": pid,
                "name": line.name,
                "price": line.price,
                "quantity": line.quantity,
                "added_at": _iso(line.added[0]),
            }
            for pid, line in sorted(self._cart_items())
            if line.added is not None
        ]

    def cart_value(self) -> float:
        return float(
            sum(
                (
                    line.price * line.quantity
                    for _, line in sorted(self._cart_items())
                    if line.price
                ),
                0.0,
            )
        )

    def cart_updated_at(self) -> datetime | None:
        """The latest add of a product still in the cart (None when it is empty)."""
        adds = [line.added[0] for _, line in self._cart_items() if line.added is not None]
        return from_micros(max(adds)) if adds else None

    def _cart_items(self) -> list[tuple[str, CartLine]]:
        cleared = self.last_purchase[0] if self.last_purchase else None
        out = []
        for pid, line in self.cart_lines.items():
            if line.added is None:
                continue
            t = line.added[0]
            if (line.removed is None or t > line.removed[0]) and (cleared is None or t > cleared):
                out.append((pid, line))
        return out

    # -- JSON (PostgreSQL JSONB) -------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "v": 1,
            "first": _touch_json(self.first),
            "last": _touch_json(self.last),
            "channels": sorted(self.channels),
            "touch": {ch: _touch_json(v) for ch, v in sorted(self.touch.items())},
            "signals": {
                name: {
                    "count": st.count,
                    "keep": st.keep,
                    "earliest": [_point_json(p) for p in st.earliest],
                    "latest": _point_json(st.latest),
                }
                for name, st in sorted(self.signals.items())
            },
            "purchases": {
                "count": self.purchase_count,
                "earliest": [_point_json(p) for p in self.purchases],
                "latest": _point_json(self.last_purchase),
                "revenue": str(self.revenue),
            },
            "cart": {
                pid: {
                    "added": _point_json(line.added),
                    "removed": _point_json(line.removed),
                    "quantity": line.quantity,
                    "price": line.price,
                    "name": line.name,
                }
                for pid, line in sorted(self.cart_lines.items())
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Summary:
        try:
            if data.get("v") != 1:
                raise ValueError(f"unsupported summary version {data.get('v')!r}")
            purchases = data["purchases"]
            return cls(
                signals={
                    name: SignalStats(
                        int(st["count"]),
                        tuple(_point(p) for p in st["earliest"]),
                        _point(st["latest"]),
                        int(st["keep"]),
                    )
                    for name, st in data["signals"].items()
                },
                purchase_count=int(purchases["count"]),
                purchases=tuple(_point(p) for p in purchases["earliest"]),
                last_purchase=_opt_point(purchases["latest"]),
                revenue=Decimal(purchases["revenue"]),
                channels=frozenset(data["channels"]),
                first=_opt_touch(data["first"]),
                last=_opt_touch(data["last"]),
                touch={ch: _touch(v) for ch, v in data["touch"].items()},
                cart_lines={
                    pid: CartLine(
                        _opt_point(c["added"]),
                        _opt_point(c["removed"]),
                        c["quantity"],
                        c["price"],
                        c["name"],
                    )
                    for pid, c in data["cart"].items()
                },
            )
        except (KeyError, TypeError, ValueError, IndexError, InvalidOperation) as exc:
            raise ValueError(f"invalid journey summary: {exc!r}") from exc

    # -- identity ---------------------------------------------------------------------

    def _key(self) -> tuple[Any, ...]:
        return (
            dict(self.signals),
            self.purchase_count,
            self.purchases,
            self.last_purchase,
            self.revenue,
            self.channels,
            self.first,
            self.last,
            dict(self.touch),
            dict(self.cart_lines),
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Summary) and self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Summary({self.to_json()!r})"


# -- merge helpers ----------------------------------------------------------------------


def _smallest(a: tuple[Point, ...], b: tuple[Point, ...], k: int) -> tuple[Point, ...]:
    """The k smallest distinct points of a and b (a bounded, idempotent min)."""
    if not b or a == b:
        return a[:k]
    if not a:
        return b[:k]
    if len(b) == 1:  # the streaming case: one new event
        p = b[0]
        if p in a or (len(a) >= k and p > a[-1]):
            return a[:k]
    return tuple(sorted(set(a).union(b))[:k])


def _max_opt(a: P | None, b: P | None) -> P | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if a >= b else b


def _gt(a: Point | None, b: Point | None) -> bool:
    return a is not None and (b is None or a > b)


def _merge_maps(
    a: Mapping[str, V], b: Mapping[str, V], merge: Callable[[V, V], V]
) -> Mapping[str, V]:
    if not b:
        return a
    if not a:
        return b
    out = dict(a)
    for key, vb in b.items():
        va = out.get(key)
        out[key] = vb if va is None else merge(va, vb)
    return out


# -- value parsing ----------------------------------------------------------------------


def _money(value: Any) -> Decimal:
    """A revenue amount as an exact Decimal (sums stay associative); junk counts 0."""
    if isinstance(value, bool) or value is None:
        return _ZERO
    if isinstance(value, int | float | str):
        try:
            d = Decimal(str(value).strip())
        except InvalidOperation:
            return _ZERO
        return d if d.is_finite() else _ZERO
    return _ZERO


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) else None


# -- JSON helpers -----------------------------------------------------------------------


# A customer's summary is read and written again on every batch that touches them,
# with the same few timestamps each time: the conversions are cached (pure functions).
@lru_cache(maxsize=1 << 16)
def _iso(us: int) -> str:
    return from_micros(us).isoformat()


@lru_cache(maxsize=1 << 16)
def _parse_us(s: str) -> int:
    return to_micros(datetime.fromisoformat(s))


def _point_json(p: Point | None) -> list[str] | None:
    return None if p is None else [_iso(p[0]), p[1]]


def _touch_json(t: Touch | None) -> list[str] | None:
    return None if t is None else [_iso(t[0]), t[1], t[2]]


def _point(v: Any) -> Point:
    return (_parse_us(v[0]), str(v[1]))


def _opt_point(v: Any) -> Point | None:
    return None if v is None else _point(v)


def _touch(v: Any) -> Touch:
    return (_parse_us(v[0]), str(v[1]), str(v[2]))


def _opt_touch(v: Any) -> Touch | None:
    return None if v is None else _touch(v)
