"""Product and order payloads (Segment E-commerce spec property names)."""

from __future__ import annotations

import random
from typing import Any

from cdp.generate.catalog import PRODUCTS, Product

Line = tuple[Product, int]


def pick_product(rng: random.Random, category: str) -> Product:
    return rng.choice(PRODUCTS[category])


def product_props(p: Product, quantity: int | None = None) -> dict[str, Any]:
    props: dict[str, Any] = {
        "product_id": p.product_id,
        "name": p.name,
        "category": p.category,
        "price": p.price,
    }
    if quantity is not None:
        props["quantity"] = quantity
    return props


def quantity(rng: random.Random) -> int:
    return 1 if rng.random() < 0.85 else 2


def basket(rng: random.Random, category: str, seed_lines: list[Line]) -> list[Line]:
    """The lines of an order: the cart (or one product of ``category``), maybe more."""
    lines = list(seed_lines) or [(pick_product(rng, category), quantity(rng))]
    while len(lines) < 4 and rng.random() < 0.3:
        lines.append((pick_product(rng, category), quantity(rng)))
    return lines


def order_props(order_id: str, lines: list[Line], **extra: Any) -> dict[str, Any]:
    revenue = round(sum(p.price * q for p, q in lines), 2)
    return {
        "order_id": order_id,
        "revenue": revenue,
        "currency": "EUR",
        "category": lines[0][0].category,
        "products": [product_props(p, q) for p, q in lines],
        **extra,
    }
