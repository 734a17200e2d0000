"""Static reference data: products, stores, kiosks, names and junk identifier values.

Built once at import from a fixed private seed, so every run sees the same catalog.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Product:
    product_id: str
    name: str
    category: str
    price: float


@dataclass(frozen=True, slots=True)
class Store:
    store_id: str
    name: str
    city: str


CATEGORIES: tuple[str, ...] = (
    "apparel",
    "shoes",
    "electronics",
    "home",
    "beauty",
    "sports",
    "toys",
    "garden",
)

_NOUNS: dict[str, tuple[str, ...]] = {
    "apparel": ("T-Shirt", "Hoodie", "Jeans", "Jacket", "Dress", "Sweater"),
    "shoes": ("Sneaker", "Boot", "Sandal", "Loafer", "Running Shoe"),
    "electronics": ("Headphones", "Speaker", "Smartwatch", "Charger", "Tablet", "Camera"),
    "home": ("Lamp", "Cushion", "Vase", "Rug", "Mug Set", "Throw Blanket"),
    "beauty": ("Face Cream", "Shampoo", "Perfume", "Lipstick", "Serum"),
    "sports": ("Yoga Mat", "Dumbbell", "Water Bottle", "Tennis Racket", "Bike Light"),
    "toys": ("Puzzle", "Building Set", "Plush Bear", "Board Game", "Toy Car"),
    "garden": ("Planter", "Hose", "Garden Chair", "Seed Kit", "Pruner"),
}
_ADJECTIVES = ("Classic", "Eco", "Urban", "Nordic", "Pro", "Soft", "Bold", "Mini", "Deluxe")
_PRICE_RANGE: dict[str, tuple[float, float]] = {
    "apparel": (12, 120),
    "shoes": (30, 180),
    "electronics": (15, 450),
    "home": (8, 150),
    "beauty": (5, 90),
    "sports": (7, 160),
    "toys": (6, 80),
    "garden": (5, 220),
}
PRODUCTS_PER_CATEGORY = 24


def _build_products() -> dict[str, tuple[Product, ...]]:
    rng = random.Random(20250106)
    out: dict[str, tuple[Product, ...]] = {}
    for c_idx, category in enumerate(CATEGORIES):
        low, high = _PRICE_RANGE[category]
        items = []
        for i in range(PRODUCTS_PER_CATEGORY):
            name = f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS[category])}"
            price = round(rng.uniform(low, high), 0) - 0.01
            items.append(Product(f"SKU-{c_idx + 1}{i:03d}", name, category, price))
        out[category] = tuple(items)
    return out


PRODUCTS: dict[str, tuple[Product, ...]] = _build_products()

STORES: tuple[Store, ...] = (
    Store("st-ams-01", "Amsterdam Kalverstraat", "Amsterdam"),
    Store("st-ams-02", "Amsterdam Zuid", "Amsterdam"),
    Store("st-rtm-01", "Rotterdam Lijnbaan", "Rotterdam"),
    Store("st-utr-01", "Utrecht Hoog Catharijne", "Utrecht"),
    Store("st-ehv-01", "Eindhoven Centrum", "Eindhoven"),
    Store("st-gro-01", "Groningen Herestraat", "Groningen"),
)

# One shared self-service kiosk per store: its device_id is seen for many people and
# must never be used to merge them. Never part of the truth mapping.
KIOSKS: dict[str, str] = {s.store_id: f"kiosk-{s.store_id}" for s in STORES}
KIOSK_IDS: frozenset[str] = frozenset(KIOSKS.values())

# Values a broken tracker or a till operator sends instead of a real identifier.
JUNK_VALUES: frozenset[str] = frozenset({"null", "test@example.com", "undefined", "", "0000"})
JUNK_BY_TYPE: dict[str, tuple[str, ...]] = {
    "email": ("test@example.com", "null", ""),
    "phone": ("0000", "null", ""),
    "loyalty_card": ("0000", "null", ""),
    "pos_customer_id": ("0000", "null"),
    "device_id": ("undefined", "null", ""),
    "cookie_id": ("undefined", "null"),
    "user_id": ("undefined", "null"),
}

FIRST_NAMES: tuple[str, ...] = (
    "anna", "emma", "sophie", "julia", "lisa", "sanne", "fleur", "eva", "noor", "lotte",
    "daan", "sem", "lucas", "jesse", "thomas", "bram", "luuk", "milan", "finn", "ruben",
    "fatima", "yasmin", "mohamed", "ayoub", "priya", "wei", "olga", "marco", "ines", "tim",
)  # fmt: skip
LAST_NAMES: tuple[str, ...] = (
    "jansen", "devries", "bakker", "visser", "smit", "meijer", "mulder", "bos", "vos",
    "peters", "hendriks", "dekker", "brouwer", "dijkstra", "vandam", "koster", "elamrani",
    "yilmaz", "wang", "kowalski", "silva", "rossi", "schmidt", "vanleeuwen", "postma",
)  # fmt: skip
EMAIL_DOMAINS: tuple[str, ...] = (
    "gmail.com", "hotmail.com", "outlook.com", "ziggo.nl", "kpnmail.nl", "icloud.com",
    "live.nl", "yahoo.com",
)  # fmt: skip
SEARCH_TERMS: dict[str, tuple[str, ...]] = {
    c: tuple(n.lower() for n in nouns) for c, nouns in _NOUNS.items()
}
AD_NETWORKS: tuple[str, ...] = ("google", "meta", "tiktok", "pinterest")
TICKET_TOPICS: tuple[str, ...] = ("delivery", "return", "product question", "invoice", "account")
APPOINTMENT_TYPES: tuple[str, ...] = ("styling", "repair", "fitting", "tech setup")
