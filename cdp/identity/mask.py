"""Masked identifier values for display (``a***@example.nl``, ``***78``): enough for a
person to recognise an identifier, not enough to recover it. Computed while the
plaintext is in memory; only the mask and the keyed hash are stored."""

from __future__ import annotations


def mask(id_type: str, value: str) -> str:
    if id_type == "email" and "@" in value:
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    if len(value) <= 4:
        return "***"
    return f"***{value[-2:]}"
