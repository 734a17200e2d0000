"""Kafka produce with asyncio acknowledgement: a request awaits one future that the
delivery reports of all its records resolve, so it is answered only after Kafka stored
(or refused) every record.

librdkafka calls delivery callbacks from ``poll()``, which a background thread runs;
the callbacks hand results to the event loop with ``call_soon_threadsafe`` (futures are
not thread-safe). ``message.timeout.ms`` bounds how long a record may wait: librdkafka
always reports every record within it, success or error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Sequence
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka import Producer as _KafkaProducer

from cdp.config import Settings
from cdp.errors import KafkaError
from cdp.kafka.producer import PRODUCER_DEFAULTS

log = logging.getLogger(__name__)

Headers = list[tuple[str, str | bytes | None]]


class NotAcknowledged(KafkaError):
    """Kafka did not acknowledge every record of a request in time."""


def _resolve(fut: asyncio.Future[None], error: str | None) -> None:
    if fut.done():  # the request already gave up (timeout, client gone)
        return
    if error is None:
        fut.set_result(None)
    else:
        fut.set_exception(NotAcknowledged(error))


class _Pending:
    """The acks one request still waits for. ``report`` runs on the poll thread only, so
    the counter needs no lock; the loop is woken once per request, not once per record."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fut: asyncio.Future[None], n: int) -> None:
        self.loop = loop
        self.fut = fut
        self.remaining = n
        self.failed = False

    def report(self, err: Any, _msg: Any) -> None:
        if self.failed:
            return
        self.remaining -= 1
        if err is not None:
            self.failed = True
        elif self.remaining:
            return
        # RuntimeError: loop closed during shutdown, nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(_resolve, self.fut, str(err) if err else None)


class AckProducer:
    """An idempotent ``acks=all`` producer whose :meth:`send` awaits the acknowledgements."""

    def __init__(self, settings: Settings, *, timeout_s: float = 5.0, linger_ms: int = 2) -> None:
        timeout_ms = int(timeout_s * 1000)
        conf = settings.librdkafka(**PRODUCER_DEFAULTS)
        conf.update({
            "message.timeout.ms": timeout_ms,
            "request.timeout.ms": min(timeout_ms, 30_000),
            "linger.ms": linger_ms,  # the client is waiting: batch only briefly
            "error_cb": self._on_error,
        })  # fmt: skip
        self.timeout_s = timeout_s
        self._producer = _KafkaProducer(conf)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="collector-kafka-poll", daemon=True)
        self.fatal: str | None = None

    def _on_error(self, err: Any) -> None:
        # Connection problems are retried by librdkafka and surface as delivery errors;
        # a fatal error (idempotence state broken) makes every later send fail.
        if getattr(err, "fatal", lambda: False)():
            self.fatal = str(err)
            log.error("kafka producer fatal error: %s", err)
        else:
            log.warning("kafka: %s", err)

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.1)

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout_s: float = 5.0) -> None:
        """Deliver what is queued (up to ``timeout_s``), then stop the poll thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        if self._producer.flush(timeout_s):
            self._producer.purge()  # undeliverable leftovers: their requests got a 503
            self._producer.poll(0)
        self._producer.close()  # stop librdkafka's threads and connections now, not at GC

    async def send(self, records: Sequence[tuple[str, bytes, bytes, Headers]]) -> None:
        """Produce ``(topic, key, value, headers)`` records and wait for every ack.

        Raises :class:`NotAcknowledged` if any record failed or the acks did not come in
        ``timeout_s`` (+1 s slack). Some records of a failed request may be stored:
        clients retry, and processing de-duplicates by messageId.
        """
        if self.fatal:
            raise NotAcknowledged(f"producer unusable: {self.fatal}")
        if not records:
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        pending = _Pending(loop, fut, len(records))
        try:
            for topic, key, value, headers in records:
                try:
                    self._producer.produce(
                        topic, value=value, key=key, headers=headers, on_delivery=pending.report
                    )
                except BufferError as exc:  # local queue full: shed load rather than block
                    raise NotAcknowledged("producer queue full") from exc
                except KafkaException as exc:
                    raise NotAcknowledged(str(exc)) from exc
            async with asyncio.timeout(self.timeout_s + 1.0):
                await fut
        except TimeoutError as exc:
            raise NotAcknowledged(f"no acknowledgement within {self.timeout_s}s") from exc
        finally:
            fut.cancel()  # no-op when done; later reports then find it done

    def reachable(self, timeout_s: float = 2.0) -> bool:
        """Whether a broker answers a metadata request (blocking; run in a thread)."""
        try:
            meta = self._producer.list_topics(timeout=timeout_s)
        except KafkaException:
            return False
        return bool(meta.brokers) and self.fatal is None
