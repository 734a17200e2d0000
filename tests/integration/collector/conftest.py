"""Fixtures: the collector served by uvicorn on a free port in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import psycopg
import pytest
import uvicorn
from confluent_kafka import Consumer, TopicPartition

from cdp.collector import CollectorConfig, add_source, create_app
from cdp.config import Settings

Serve = Callable[..., AbstractContextManager[str]]


@contextmanager
def serve_app(settings: Settings, config: CollectorConfig | None = None) -> Iterator[str]:
    """Run the app until the block ends; yields its base URL. It connects to
    PostgreSQL as the least-privilege writer role, as deployed."""
    if settings.db_role_worker is None:
        settings = settings.model_copy(update={"db_role_worker": "cdp_writer"})
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, config), log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "collector did not start"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


@pytest.fixture
def serve() -> Serve:
    return serve_app


@pytest.fixture
def keys(db: psycopg.Connection[Any]) -> dict[str, str]:
    """Write keys of two sources: ``web`` (channel web) and ``app`` (channel app)."""
    return {"web": add_source(db, "webshop", "web"), "app": add_source(db, "ios-app", "app")}


@pytest.fixture
def record_count(settings: Settings) -> Callable[[str], int]:
    """How many records a topic holds (sum of high watermarks; no transactions used)."""

    def count(topic: str) -> int:
        consumer = Consumer(settings.librdkafka(**{"group.id": "collector-count"}))
        try:
            meta = consumer.list_topics(topic, timeout=10)
            total = 0
            for p in meta.topics[topic].partitions:
                _low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                total += high
            return total
        finally:
            consumer.close()

    return count
