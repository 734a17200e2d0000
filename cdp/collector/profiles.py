"""The profile API on the collector app: ``GET /v1/profiles/{TYPE:VALUE | cus_...}``.

Authenticated by a *read key* (table ``read_keys``), never a write key: write keys are
public in browsers, read keys are server-side secrets. A read key is refused on the
write endpoints (they only consult ``sources``) and a write key gets 403 here.
Only the SHA-256 of a read key is stored; every request checks the table, so a revoked
key stops working at once.

The answer is the unified profile: identity (masked identifiers, channels) plus the
journey (stage, cart, latest touchpoint per channel). Traits are not part of it: the
platform stores no plaintext attributes (identifiers are kept only as keyed hashes plus
masks), so there is nothing to return without storing PII.

Database work runs in Starlette's thread pool on a small dedicated connection pool, so
the event loop (and event ingestion) never waits on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import psycopg
from psycopg_pool import ConnectionPool
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cdp.collector.auth import basic_key
from cdp.collector.metrics import Metrics
from cdp.collector.sources import hash_key
from cdp.collector.sources import lookup as lookup_write_key
from cdp.config import Settings
from cdp.errors import CDPError
from cdp.identity.queries import IdentityQueries, LookupError_
from cdp.journey.queries import JourneyQueries, resolve_customer
from cdp.store.connect import session_options

log = logging.getLogger(__name__)

READ_KEY_PREFIX = "rk_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")

Lifespan = Callable[[Starlette], AbstractAsyncContextManager[None]]


class ReadKeyError(CDPError):
    """Bad or duplicate read-key name, or unknown read key."""


@dataclass(frozen=True)
class ReadKey:
    name: str
    created_at: datetime | None = None
    revoked_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "created_at": self.created_at, "revoked_at": self.revoked_at}


# -- read keys ----------------------------------------------------------------------------


def generate_read_key() -> str:
    return READ_KEY_PREFIX + secrets.token_urlsafe(24)


def add_read_key(conn: psycopg.Connection[Any], name: str) -> str:
    """Create a read key named ``name``; returns the key (shown once, stored hashed)."""
    if not _NAME.match(name):
        raise ReadKeyError(f"invalid read key name {name!r} (letters, digits, _.:- ; max 100)")
    key = generate_read_key()
    try:
        with conn.transaction():
            conn.execute(
                "INSERT INTO read_keys (name, key_hash) VALUES (%s, %s)", (name, hash_key(key))
            )
    except psycopg.errors.UniqueViolation as exc:
        raise ReadKeyError(f"a read key named {name!r} already exists") from exc
    return key


def list_read_keys(conn: psycopg.Connection[Any]) -> list[ReadKey]:
    rows = conn.execute(
        "SELECT name, created_at, revoked_at FROM read_keys ORDER BY name"
    ).fetchall()
    return [ReadKey(*row) for row in rows]


def revoke_read_key(conn: psycopg.Connection[Any], name: str) -> None:
    """Revoke a read key (idempotent; the row stays for the audit trail)."""
    with conn.transaction():
        row = conn.execute(
            "UPDATE read_keys SET revoked_at = coalesce(revoked_at, now()) WHERE name = %s"
            " RETURNING name",
            (name,),
        ).fetchone()
    if row is None:
        raise ReadKeyError(f"no read key named {name!r}")


def lookup_read_key(conn: psycopg.Connection[Any], key: str) -> ReadKey | None:
    """The active (not revoked) read key, or None."""
    row = conn.execute(
        "SELECT name, created_at, revoked_at FROM read_keys"
        " WHERE key_hash = %s AND revoked_at IS NULL",
        (hash_key(key),),
    ).fetchone()
    return ReadKey(*row) if row else None


def request_key(authorization: str | None) -> str | None:
    """``Authorization: Bearer KEY`` or Basic auth with the key as user name."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer":
        return token.strip() or None
    return basic_key(authorization)


# -- the profile --------------------------------------------------------------------------


def build_profile(
    conn: psycopg.Connection[Any], settings: Settings, customer_id: str
) -> dict[str, Any]:
    """The unified profile of an existing customer (masked identifiers only)."""
    identity = IdentityQueries(conn, settings).profile(customer_id)
    journey = JourneyQueries(conn).show(customer_id)
    identifiers = [
        {
            "type": i["type"],
            "masked": i["value"],
            "first_seen": i["first_seen"],
            "last_seen": i["last_seen"],
            "first_channel": i["first_channel"],
            "last_channel": i["last_channel"],
        }
        for i in identity["identifiers"]
    ]
    keys = ("stage", "stage_since", "cart", "cart_value", "cart_updated_at", "flags",
            "purchase_count", "first_channel", "first_seen", "last_event_at", "last_channel",
            "last_touchpoints")  # fmt: skip
    return {
        "customer_id": customer_id,
        **{k: journey[k] for k in keys},
        "channels": sorted(set(identity["channels"]) | set(journey["channels"])),
        "identifiers": identifiers,
        "watermark": journey["watermark"],
    }


@dataclass(frozen=True)
class _Answer:
    status: int
    body: dict[str, Any]


def _refusal(status: int, reason: str, detail: str) -> _Answer:
    return _Answer(status, {"error": reason, "detail": detail})


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


class ProfileAPI:
    """The ``/v1/profiles/...`` route and its own connection pool."""

    def __init__(self, settings: Settings, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        # the collector runs as the worker role (CDP_DB_ROLE_WORKER) when configured
        kwargs: dict[str, Any] = {"autocommit": True, "connect_timeout": 5,
                                  **session_options(settings, settings.db_role_worker)}  # fmt: skip
        self.pool = ConnectionPool(
            settings.dsn(), min_size=1, max_size=4, kwargs=kwargs, open=False, timeout=5.0,
            name="collector-profiles",
        )  # fmt: skip

    def routes(self) -> list[Route]:
        return [Route("/v1/profiles/{ref:path}", self.endpoint, methods=["GET"])]

    def wrap(self, inner: Lifespan) -> Lifespan:
        """A lifespan that opens/closes the pool around ``inner``."""

        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            self.pool.open(wait=False)  # start even if the database is briefly away
            try:
                async with inner(app):
                    yield
            finally:
                await run_in_threadpool(self.pool.close)

        return lifespan

    async def endpoint(self, request: Request) -> Response:
        key = request_key(request.headers.get("authorization"))
        if key is None:
            answer = _refusal(401, "unauthorized", "missing read key")
        else:
            try:
                answer = await run_in_threadpool(self._answer, key, request.path_params["ref"])
            except Exception as exc:  # database down: we cannot tell, so no 401/404
                log.warning("profile lookup failed: %s", exc)
                answer = _refusal(503, "unavailable", "profiles cannot be read right now")
        if self.metrics is not None:
            self.metrics.requests.labels("profiles", str(answer.status)).inc()
        return _json(answer.status, answer.body)

    def _answer(self, key: str, ref: str) -> _Answer:
        with self.pool.connection() as conn:
            if lookup_read_key(conn, key) is None:
                if lookup_write_key(conn, key) is not None:
                    return _refusal(403, "forbidden", "write keys cannot read profiles")
                return _refusal(401, "unauthorized", "unknown or revoked read key")
            try:
                cid = resolve_customer(conn, self.settings, ref)
            except LookupError_ as exc:
                return _refusal(400, "invalid_identifier", str(exc))
            if cid is None:
                return _refusal(404, "not_found", "no customer for this identifier")
            return _Answer(200, build_profile(conn, self.settings, cid))
