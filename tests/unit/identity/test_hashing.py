"""Keyed hashing: stable, type-scoped, secret-dependent node ids."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from cdp.errors import ConfigError
from cdp.identity import IdentifierHasher, customer_id_for


def test_node_id_format() -> None:
    hasher = IdentifierHasher(b"s")
    expected = hmac.new(b"s", b"email:a@b.nl", hashlib.sha256).hexdigest()[:32]
    assert hasher.node_id("email", "a@b.nl") == f"email:{expected}"


def test_node_id_depends_on_type_and_secret() -> None:
    a, b = IdentifierHasher(b"one"), IdentifierHasher(b"two")
    assert a.node_id("user_id", "42") != a.node_id("anonymous_id", "42")
    assert a.node_id("user_id", "42") != b.node_id("user_id", "42")
    assert a.node_id("user_id", "42") == IdentifierHasher(b"one").node_id("user_id", "42")


def test_no_plaintext_and_no_secret_in_repr() -> None:
    hasher = IdentifierHasher(b"very-secret")
    assert "a@b.nl" not in hasher.node_id("email", "a@b.nl")
    assert "very-secret" not in repr(hasher)


def test_empty_secret_rejected() -> None:
    with pytest.raises(ConfigError):
        IdentifierHasher(b"")


def test_customer_id() -> None:
    anchor = "email:0123"
    assert customer_id_for(anchor) == "cus_" + hashlib.sha256(b"email:0123").hexdigest()[:24]
    assert len(customer_id_for(anchor)) == 28
