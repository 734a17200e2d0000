"""Publishing a processor's outputs after its transaction committed.

Outputs are flushed before the batch is acknowledged; a failed delivery is retried
(never skipped), so an acknowledged input always has its outputs on Kafka. A crash
between commit and publish is covered by the processors re-publishing the outputs of
fenced records on redelivery.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException, Producer

from cdp.config import Settings
from cdp.kafka.producer import PRODUCER_DEFAULTS

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Output:
    topic: str
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


class Publisher:
    def __init__(self, settings: Settings, client_id: str) -> None:
        conf = settings.librdkafka(**PRODUCER_DEFAULTS)
        conf["client.id"] = client_id
        conf["message.timeout.ms"] = 30000
        self._producer = Producer(conf)

    def close(self) -> None:
        """Release the producer (every publish has flushed already)."""
        self._producer.close()

    def publish(self, outputs: Sequence[Output], should_stop: Any = None) -> None:
        """Deliver every output, retrying failures with backoff until all are acked."""
        pending = list(outputs)
        delay = 0.5
        while pending:
            failed: list[tuple[Output, str]] = []  # with the reason

            def on_delivery_for(
                out: Output, failed: list[tuple[Output, str]] = failed
            ) -> Callable[[Any, Any], None]:
                def on_delivery(err: Any, _msg: Any) -> None:
                    if err is not None:
                        failed.append((out, str(err)))

                return on_delivery

            for out in pending:
                while True:
                    try:
                        self._producer.produce(
                            out.topic,
                            value=out.value,
                            key=out.key,
                            headers=list(out.headers),
                            on_delivery=on_delivery_for(out),
                        )
                        break
                    except BufferError:
                        self._producer.poll(0.1)
                    except KafkaException as exc:
                        failed.append((out, str(exc)))
                        break
            self._producer.flush()
            if failed:
                if should_stop is not None and should_stop():
                    raise RuntimeError("stopping with undelivered outputs")
                log.warning(
                    "%d output(s) not delivered (%s), retrying in %.1fs",
                    len(failed), failed[0][1], delay,
                )  # fmt: skip
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
            pending = [out for out, _ in failed]
