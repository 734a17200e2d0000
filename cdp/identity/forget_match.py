"""Which Kafka records are about a person being forgotten.

PostgreSQL only knows the person by node ids (keyed hashes) and customer ids; the
topics carry plaintext. A record is the person's when:

* any string in its key, value or headers is one of their customer or node ids
  (resolved events, merge records, transitions, actions);
* an event in it (a channel record, the ``event`` of a resolved record, the raw
  bytes of a dead-letter entry) carries an identifier that hashes to one of their
  nodes, exactly as the identity processor would hash it (``previousId`` under each
  of their identifier types, as its type depends on the graph);
* a record key of the form ``type:value`` hashes to one of their nodes;
* bytes that are not a valid event (malformed JSON, wrong types: dead-letter
  material) contain a token that hashes to one of their nodes, or contain the
  plaintext the request named.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from typing import Any

import orjson

from cdp.errors import ValidationError
from cdp.events import parse_object
from cdp.identity.hashing import IdentifierHasher
from cdp.identity.normalize import normalize

# what free text is split on to find identifier-looking tokens
_TOKEN_SEPARATORS = re.compile(r"[\s\"'{}\[\](),;=<>\\]+")
# what a written phone number can look like: digits and the separators people type
_PHONE_SHAPE = re.compile(r"\s*\+?[\d\s().\-/]{6,30}")


class PersonMatcher:
    def __init__(
        self,
        hasher: IdentifierHasher,
        region: str,
        nodes: Iterable[str],
        customer_ids: Iterable[str],
        plaintext: Iterable[str] = (),
    ) -> None:
        self.hasher = hasher
        self.region = region
        self.nodes = frozenset(nodes)
        self.exact = self.nodes | frozenset(customer_ids)
        self.types = frozenset(n.split(":", 1)[0] for n in self.nodes)
        self.plaintext = [p.lower().encode() for p in plaintext if p]
        self._any_type: dict[str, bool] = {}

    # -- identifiers -------------------------------------------------------------
    def names(self, id_type: str, raw: str) -> bool:
        """Whether ``raw``, read as an identifier of ``id_type``, is one of theirs."""
        if id_type not in self.types or not _plausible(id_type, raw):
            return False
        norm = normalize(id_type, raw, self.region)
        return norm is not None and self.hasher.node_id(id_type, norm) in self.nodes

    def names_any_type(self, raw: str) -> bool:
        hit = self._any_type.get(raw)
        if hit is None:
            hit = any(self.names(t, raw) for t in self.types)
            if len(self._any_type) < 1 << 16:
                self._any_type[raw] = hit
        return hit

    def _string(self, value: str) -> bool:
        if value in self.exact:
            return True
        id_type, sep, rest = value.partition(":")
        return bool(sep) and self.names(id_type, rest)  # a key-like "type:value"

    # -- records -----------------------------------------------------------------
    def record(self, key: bytes | None, value: bytes | None, headers: Any = None) -> bool:
        if self.data(key) or self.data(value):
            return True
        return any(self.data(v) for _, v in headers or ())

    def data(self, data: bytes | None) -> bool:
        if not data:
            return False
        lowered = data.lower()
        if any(p in lowered for p in self.plaintext):
            return True
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            return self._text(data.decode("utf-8", "replace"))
        return self._json(obj)

    def _text(self, text: str) -> bool:
        if any(x in text for x in self.exact) or self._string(text.strip()):
            return True
        return any(
            self._string(tok) or self.names_any_type(tok)
            for tok in _TOKEN_SEPARATORS.split(text)
            if tok
        )

    def _event(self, obj: dict[str, Any]) -> tuple[bool, bool]:
        """(whether ``obj`` is a valid event, whether its identifiers are theirs)."""
        try:
            event = parse_object(obj)
        except ValidationError:
            return False, False
        if any(self.names(t, v) for t, v in event.identifier_pairs()):
            return True, True
        alias = event.previousId
        return True, alias is not None and self.names_any_type(alias)

    def _json(self, root: Any) -> bool:
        """Whether a decoded JSON value is about them. Strings inside a valid event are
        only compared with their ids: its identifiers were hashed as the identity
        processor hashes them. Any other string is hashed under each of their types."""
        stack: list[tuple[Any, bool]] = [(root, True)]  # iterative: input may nest deeply
        while stack:
            obj, hashed = stack.pop()
            if isinstance(obj, str):
                if self._string(obj) or (hashed and self.names_any_type(obj)):
                    return True
            elif isinstance(obj, list):
                stack.extend((v, hashed) for v in obj)
            elif isinstance(obj, dict):
                if hashed and "messageId" in obj:
                    valid, hit = self._event(obj)
                    if hit:
                        return True
                    hashed = not valid
                if "raw_b64" in obj and self._dead_letter(obj):
                    return True
                stack.extend((k, hashed) for k in obj)
                stack.extend((v, hashed) for v in obj.values())
        return False

    def _dead_letter(self, doc: dict[str, Any]) -> bool:
        for field in ("raw_b64", "key_b64"):
            encoded = doc.get(field)
            if isinstance(encoded, str):
                try:
                    raw = base64.b64decode(encoded, validate=True)
                except (binascii.Error, ValueError):
                    continue
                if self.data(raw):
                    return True
        return False


def _plausible(id_type: str, raw: str) -> bool:
    """A cheap test before normalizing: phone parsing costs tens of microseconds."""
    if id_type == "phone":
        return _PHONE_SHAPE.fullmatch(raw) is not None
    if id_type == "email":
        return "@" in raw
    return True
