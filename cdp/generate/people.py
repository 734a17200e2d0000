"""The synthetic population: who each person is and which identifiers they own.

Identifier values are unique per person by construction (they embed the person index
or a hash of seed + index), so the truth mapping never has a conflict. How a value is
*spelled* in an event varies (see the ``*_variant`` helpers); every spelling is a key
of the truth mapping.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field

from cdp.generate.catalog import CATEGORIES, EMAIL_DOMAINS, FIRST_NAMES, LAST_NAMES

# Proportions of the population (documented in docs/generate.md).
P_EMAIL = 0.85  # at least one email address
P_SECOND_EMAIL = 0.25  # of those with an email
P_ACCOUNT = 0.65  # of those with an email: a login (user id), now or later
P_PHONE = 0.5
P_CARD = 0.55  # of store-going persons: a loyalty card
P_POS = 0.3  # of store-going persons: a POS customer number
P_APP = 0.45  # of online-going persons: the app on 1-3 devices
P_CHURN = 0.25  # stops coming at some day
P_EXISTING = 0.4  # already a customer at day 0
P_CONSENT = 0.85  # carries a consent setting in its events
P_NEWSLETTER = 0.6  # of those with an email
PERSONAS: tuple[tuple[str, float], ...] = (("omni", 0.45), ("online", 0.35), ("store", 0.20))


def _hash(seed: int, *parts: object) -> str:
    text = ":".join(str(p) for p in (seed, *parts))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _mobile(idx: int, seed: int) -> str:
    """A valid Dutch mobile number (06-1… to 06-5…), national significant digits.

    7,654,321 is coprime with 50,000,000, so distinct persons get distinct numbers."""
    n = (idx * 7_654_321 + seed) % 50_000_000
    return f"6{1 + n // 10_000_000}{n % 10_000_000:07d}"


def _uuid(h: str) -> str:
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


@dataclass(slots=True)
class Browser:
    """A web browser: Segment's anonymousId plus a persistent first-party cookie."""

    anonymous_id: str
    cookie_id: str
    logged_in: bool = False


@dataclass(slots=True)
class Device:
    """A phone or tablet with the app: a device id and the app's anonymousId."""

    device_id: str
    anonymous_id: str
    logged_in: bool = False


@dataclass(slots=True)
class Person:
    idx: int
    person_id: str
    persona: str  # omni | online | store
    first: str
    last: str
    emails: list[str]
    phone: str | None  # national significant number, e.g. "612345678"
    user_id: str | None  # login id; usable from ``signup_day`` on
    signup_day: int
    card: str | None  # loyalty card digits; registered on ``card_day``
    card_day: int
    pos_id: str | None
    browsers: list[Browser]
    devices: list[Device]
    start_day: int
    churn_day: int  # no events from this day on
    rate: float  # probability of a session on an active day
    buy: float  # base purchase propensity of a session
    categories: tuple[str, ...]  # favourite categories, most liked first
    marketing: bool | None  # None: no consent setting in the events
    newsletter: bool
    # mutable journey state
    signed_up: bool = False
    card_registered: bool = False
    interest: tuple[str, int, str] | None = None  # (category, day, "online" | "store")
    orders: int = 0
    scheduled: list[tuple[float, str, dict[str, object]]] = field(default_factory=list)

    @property
    def goes_online(self) -> bool:
        return bool(self.browsers or self.devices)

    @property
    def goes_to_store(self) -> bool:
        return self.persona != "online"


def make_person(rng: random.Random, idx: int, seed: int, days: int) -> Person:
    """One person with their identifiers, lifecycle and tastes."""
    r = rng.random
    persona = rng.choices([p for p, _ in PERSONAS], [w for _, w in PERSONAS])[0]
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    emails: list[str] = []
    if r() < P_EMAIL:
        emails.append(f"{first}.{last}{idx}@{rng.choice(EMAIL_DOMAINS)}")
        if r() < P_SECOND_EMAIL:
            emails.append(f"{first[0]}{last}{idx}@{rng.choice(('work.nl', 'company.com'))}")
    phone = _mobile(idx, seed) if r() < P_PHONE else None

    existing = r() < P_EXISTING
    start_day = rng.randrange(0, 3) if existing else int(rng.uniform(0, max(1, days * 0.85)))
    churn_day = days
    if r() < P_CHURN:
        churn_day = min(days, start_day + 1 + int(rng.expovariate(1 / max(1.0, days / 3))))

    user_id, signup_day = None, days
    if emails and r() < P_ACCOUNT:
        user_id = f"usr_{_hash(seed, 'user', idx)[:14]}"
        signup_day = start_day if existing else start_day + int(rng.expovariate(1 / 10))

    card = pos_id = None
    card_day = days
    if persona != "online":
        if r() < P_CARD:
            card = f"2620{(idx * 104_729 + seed * 7) % 1_000_000_000:09d}"
            card_day = start_day if existing else start_day + int(rng.expovariate(1 / 14))
        if r() < P_POS:
            pos_id = f"C{(idx * 31_337 + seed) % 10_000_000:07d}"

    browsers: list[Browser] = []
    devices: list[Device] = []
    if persona != "store" or r() < 0.4:
        for b in range(rng.choices((1, 2, 3), (60, 30, 10))[0]):
            h = _hash(seed, "browser", idx, b)
            browsers.append(Browser(_uuid(h), f"GA1.2.{int(h[:8], 16)}.{int(h[8:16], 16)}"))
        if r() < P_APP:
            for d in range(rng.choices((1, 2, 3), (70, 22, 8))[0]):
                h = _hash(seed, "device", idx, d)
                devices.append(Device(_uuid(h).upper(), _uuid(h[::-1])))

    rate = min(0.9, rng.lognormvariate(-1.75, 0.6))  # median ~0.17 sessions/day
    buy = min(0.6, rng.betavariate(2, 9))
    cats = tuple(rng.sample(CATEGORIES, 3))
    marketing = (r() < 0.6) if r() < P_CONSENT else None
    return Person(
        idx=idx,
        person_id=f"p{idx:06d}",
        persona=persona,
        first=first,
        last=last,
        emails=emails,
        phone=phone,
        user_id=user_id,
        signup_day=signup_day,
        card=card,
        card_day=card_day,
        pos_id=pos_id,
        browsers=browsers,
        devices=devices,
        start_day=start_day,
        churn_day=churn_day,
        rate=rate,
        buy=buy,
        categories=cats,
        marketing=marketing,
        newsletter=bool(emails) and r() < P_NEWSLETTER,
        signed_up=existing and user_id is not None,
        card_registered=existing and card is not None,
    )


def email_variant(rng: random.Random, email: str) -> str:
    """Mostly as typed; sometimes capitalised or padded with spaces."""
    x = rng.random()
    if x < 0.82:
        return email
    if x < 0.9:
        local, _, domain = email.partition("@")
        return f"{local.capitalize()}@{domain.capitalize()}"
    if x < 0.95:
        return email.upper()
    return f" {email} "


def phone_variant(rng: random.Random, national: str) -> str:
    """A Dutch mobile number in one of the formats people and systems use."""
    n = national  # "6" + 8 digits
    return rng.choice(
        (
            f"+31 {n[0]} {n[1:5]} {n[5:]}",
            f"0{n[0]}-{n[1:]}",
            f"0031{n}",
            f"+31{n}",
            f"0{n}",
        )
    )


def card_variant(rng: random.Random, card: str) -> str:
    """Loyalty card digits; scanned cleanly or typed with spaces/dashes."""
    x = rng.random()
    if x < 0.75:
        return card
    if x < 0.9:
        return f"{card[:4]} {card[4:8]} {card[8:12]} {card[12:]}"
    return f"{card[:4]}-{card[4:7]}-{card[7:10]}-{card[10:]}"
