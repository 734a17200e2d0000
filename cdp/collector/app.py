"""The collector ASGI app: ``create_app(settings)``.

Order of checks per request: write key (401) → body size/encoding (413/415/400) →
JSON and envelope (400/413) → Kafka acknowledgement of every event (503 on failure or
timeout) → 200 ``{"success": true}``. A batch is all-or-nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cdp.collector.auth import AuthUnavailable, Directory, basic_key, body_key
from cdp.collector.body import BodyError, read_body
from cdp.collector.delivery import AckProducer, Headers, NotAcknowledged
from cdp.collector.mapping import EVENT_TYPES, BatchError, Mapped, map_batch, map_message
from cdp.collector.metrics import Metrics
from cdp.collector.profiles import ProfileAPI
from cdp.collector.sources import Source
from cdp.config import Settings, load_settings
from cdp.errors import ValidationError
from cdp.events.envelope import SCHEMA_VERSION
from cdp.events.validate import MAX_EVENT_BYTES

log = logging.getLogger(__name__)

ENDPOINTS: tuple[str, ...] = (*EVENT_TYPES, "batch")


@dataclass(frozen=True)
class CollectorConfig:
    """Collector knobs (defaults are the documented production values)."""

    auth_ttl_s: float = 2.0  # a revoked key stops working within this (must be <= 5)
    produce_timeout_s: float = 5.0  # librdkafka message.timeout.ms; then 503
    max_event_bytes: int = MAX_EVENT_BYTES
    max_batch_bytes: int = 500 * 1024


def _error(status: int, reason: str, detail: Any, **extra: Any) -> Response:
    return JSONResponse({"error": reason, "detail": detail, **extra}, status_code=status)


class Collector:
    """Request handling and the resources it needs (opened by the app's lifespan)."""

    def __init__(self, settings: Settings, config: CollectorConfig) -> None:
        self.settings = settings
        self.config = config
        self.metrics = Metrics()
        self.directory = Directory(settings, config.auth_ttl_s)
        self.producer: AckProducer | None = None

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        self.directory.open()
        self.producer = AckProducer(self.settings, timeout_s=self.config.produce_timeout_s)
        self.producer.start()
        try:
            yield
        finally:
            await run_in_threadpool(self.producer.close)
            await run_in_threadpool(self.directory.close)

    def endpoint(self, kind: str) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            response = await self._ingest(kind, request)
            self.metrics.requests.labels(kind, str(response.status_code)).inc()
            return response

        return handler

    async def _ingest(self, kind: str, request: Request) -> Response:
        limit = self.config.max_batch_bytes if kind == "batch" else self.config.max_event_bytes
        try:
            source = await self.directory.authenticate(
                basic_key(request.headers.get("authorization"))
            )
            if source is None and "authorization" in request.headers:
                return _error(401, "unauthorized", "unknown or revoked write key")
            try:
                raw = await read_body(
                    request.stream(),
                    limit=limit,
                    encoding=request.headers.get("content-encoding"),
                    content_length=request.headers.get("content-length"),
                )
                body = orjson.loads(raw)
            except ClientDisconnect:
                return _error(400, "client_disconnected", "the request body was cut off")
            except (BodyError, orjson.JSONDecodeError) as exc:
                if source is None:  # nobody learns anything without a key
                    return _error(401, "unauthorized", "missing write key")
                if isinstance(exc, BodyError):
                    self.metrics.rejected.labels(exc.reason).inc()
                    return _error(exc.status, exc.reason, exc.detail)
                self.metrics.rejected.labels("invalid_json").inc()
                return _error(400, "invalid_json", str(exc))
            if source is None:
                source = await self.directory.authenticate(body_key(body))
                if source is None:
                    return _error(401, "unauthorized", "missing, unknown or revoked write key")
        except AuthUnavailable as exc:
            log.warning("source lookup failed: %s", exc)
            return _error(503, "unavailable", "write keys cannot be checked right now")
        return await self._accept(kind, body, source)

    async def _accept(self, kind: str, body: Any, source: Source) -> Response:
        received_at = datetime.now(UTC)
        max_bytes = self.config.max_event_bytes
        try:
            if kind == "batch":
                mapped = map_batch(
                    body, channel=source.channel, received_at=received_at, max_bytes=max_bytes
                )
            else:
                mapped = [
                    map_message(
                        body,
                        event_type=kind,
                        channel=source.channel,
                        received_at=received_at,
                        max_bytes=max_bytes,
                    )
                ]
        except ValidationError as exc:
            self.metrics.rejected.labels(exc.reason).inc()
            return _error(413 if exc.reason == "too_large" else 400, exc.reason, exc.detail)
        except BatchError as exc:
            return self._batch_error(body, exc)
        return await self._produce(mapped, source)

    def _batch_error(self, body: Any, exc: BatchError) -> Response:
        for _, err in exc.errors:
            self.metrics.rejected.labels(err.reason).inc()
        valid = len(body["batch"]) - len(exc.errors)
        if valid:
            self.metrics.rejected.labels("batch_rejected").inc(valid)
        invalid = [{"index": i, "reason": e.reason, "detail": e.detail} for i, e in exc.errors]
        reason = "too_large" if exc.too_large else "invalid_batch"
        detail = f"{len(exc.errors)} of {len(body['batch'])} message(s) rejected; none stored"
        return _error(413 if exc.too_large else 400, reason, detail, invalid=invalid)

    async def _produce(self, mapped: list[Mapped], source: Source) -> Response:
        assert self.producer is not None, "lifespan not started"
        headers: Headers = [
            ("schema_version", SCHEMA_VERSION.encode()),
            ("source", source.name.encode()),
        ]
        records = [
            (
                self.settings.topic(f"touchpoints.{m.event.channel.value}"),
                m.event.kafka_key().encode(),
                m.value,
                headers,
            )
            for m in mapped
        ]
        started = time.perf_counter()
        try:
            await self.producer.send(records)
        except NotAcknowledged as exc:
            log.warning("not acknowledged (%d event(s)): %s", len(records), exc)
            self.metrics.rejected.labels("not_acknowledged").inc(len(records))
            return _error(503, "not_acknowledged", "events not stored; retry later")
        self.metrics.produce_seconds.observe(time.perf_counter() - started)
        self.metrics.accepted.labels(source.channel).inc(len(records))
        return JSONResponse({"success": True})

    async def health(self, _request: Request) -> Response:
        kafka, db = await asyncio.gather(
            run_in_threadpool(self.producer.reachable) if self.producer else _false(),
            run_in_threadpool(self.directory.db_ok),
        )
        ok = kafka and db
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "kafka": kafka, "database": db},
            status_code=200 if ok else 503,
        )

    async def metrics_endpoint(self, _request: Request) -> Response:
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def _false() -> bool:
    return False


def create_app(settings: Settings, config: CollectorConfig | None = None) -> Starlette:
    """The collector app; Kafka and database resources live for the app's lifespan."""
    collector = Collector(settings, config or CollectorConfig())
    routes = [Route(f"/v1/{k}", collector.endpoint(k), methods=["POST"]) for k in ENDPOINTS]
    # analytics.js (analytics-next) posts to {apiHost}/t, /i, /p, ... and /b when batching
    routes += [Route(f"/v1/{k[0]}", collector.endpoint(k), methods=["POST"]) for k in ENDPOINTS]
    routes += [
        Route("/health", collector.health, methods=["GET"]),
        Route("/metrics", collector.metrics_endpoint, methods=["GET"]),
    ]
    profiles = ProfileAPI(settings, collector.metrics)  # GET /v1/profiles/..., read keys
    routes += profiles.routes()
    # Browser SDKs post cross-origin (RudderStack JS with Authorization and AnonymousId
    # headers, hence a preflight). Write keys are public in browsers anyway.
    cors = Middleware(
        CORSMiddleware, allow_origins=["*"], allow_methods=["POST"], allow_headers=["*"]
    )
    app = Starlette(routes=routes, middleware=[cors], lifespan=profiles.wrap(collector.lifespan))
    app.state.collector = collector
    return app


def create_app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory`` (one app per worker process)."""
    return create_app(load_settings())
