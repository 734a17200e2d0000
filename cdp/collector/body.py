"""Bounded request-body reading: the limit applies to the decompressed size and is
enforced while streaming, so neither a huge upload nor a gzip bomb is ever held whole.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator


class BodyError(Exception):
    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail


def _too_large(limit: int) -> BodyError:
    return BodyError(413, "too_large", f"request body larger than {limit} bytes")


async def read_body(
    chunks: AsyncIterator[bytes],
    *,
    limit: int,
    encoding: str | None,
    content_length: str | None,
) -> bytes:
    """The (decompressed) body, at most ``limit`` bytes, else :class:`BodyError` 413."""
    enc = (encoding or "identity").strip().lower()
    if enc not in ("identity", "gzip"):
        raise BodyError(415, "unsupported_encoding", f"Content-Encoding {enc!r} (use gzip)")
    if content_length is not None and content_length.isdigit() and int(content_length) > limit:
        raise _too_large(limit)  # compressed input is never larger than what it expands to
    out = bytearray()
    # 16 + MAX_WBITS: gzip container. max_length caps each inflate step, so memory stays
    # at ~limit however well the input compresses.
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if enc == "gzip" else None
    received = 0
    async for chunk in chunks:
        received += len(chunk)
        if received > limit:
            raise _too_large(limit)
        if inflater is None:
            out += chunk
            continue
        data = chunk
        while data:
            try:
                out += inflater.decompress(data, limit + 1 - len(out))
            except zlib.error as exc:
                raise BodyError(400, "invalid_gzip", str(exc)) from exc
            if len(out) > limit:
                raise _too_large(limit)
            data = inflater.unconsumed_tail
    if inflater is not None:
        try:
            out += inflater.flush()
        except zlib.error as exc:  # pragma: no cover - flush errors are rare
            raise BodyError(400, "invalid_gzip", str(exc)) from exc
        if not inflater.eof:
            raise BodyError(400, "invalid_gzip", "truncated gzip stream")
        if len(out) > limit:
            raise _too_large(limit)
    return bytes(out)
