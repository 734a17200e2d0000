"""Kafka security against a real broker: a dedicated KRaft node (the shared test broker
stays PLAINTEXT) with SASL_PLAINTEXT, SASL_SSL and SSL listeners, SCRAM users
bootstrapped at format time and a throw-away CA. Over each listener: topics created
with the admin client, events sent with the producer SDK and applied to PostgreSQL
by a real ``cdp worker --processor identity`` (Faust/aiokafka consuming, librdkafka
publishing). A refused login or an untrusted certificate fails fast with an error
naming the settings, instead of retrying forever."""

from __future__ import annotations

import gc
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from cdp.config import Settings
from cdp.errors import KafkaError
from cdp.kafka.probe import KafkaAuthError, probe
from cdp.kafka.producer import DeliveryError, Producer
from cdp.kafka.reader import read_topic
from cdp.kafka.topics import create_topics, existing_topics
from cdp.stack.kafka import BrokerTLS, LocalKafka
from tests.integration.tls import CertAuthority, make_ca
from tests.integration.workers import Workers

USER, PASSWORD = "cdp-worker", "s3cret-scram-pw"

EVENTS = [
    {"messageId": f"sec-{i}", "type": "track", "event": "Product Viewed", "channel": "web",
     "anonymousId": f"anon-{i % 3}", "timestamp": f"2026-03-01T10:{i:02d}:00+00:00",
     "properties": {"product_id": f"sku-{i}"}}
    for i in range(12)
]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SecureBroker:
    def __init__(self, kafka: LocalKafka, ca: CertAuthority, other_ca: CertAuthority) -> None:
        self.kafka, self.ca, self.other_ca = kafka, ca, other_ca

    def settings(self, base: Settings, protocol: str, **security: Any) -> Settings:
        """``base`` (the test's schema and topic prefix) pointed at one listener."""
        return base.model_copy(
            update={
                "kafka_bootstrap": self.kafka.listener_bootstrap(protocol),
                "kafka_security_protocol": protocol,
                **security,
            }
        )


@pytest.fixture(scope="module")
def broker() -> Iterator[SecureBroker]:
    state = Path(tempfile.mkdtemp(prefix="cdp-sec-", dir="/tmp"))
    ca = make_ca(state / "ca")
    other_ca = make_ca(state / "other-ca")  # signs nothing the broker trusts
    kafka = LocalKafka(
        state,
        port=_free_port(),
        controller_port=_free_port(),
        heap="384m",
        secure_listeners={p: _free_port() for p in ("SASL_PLAINTEXT", "SASL_SSL", "SSL")},
        scram_users={USER: PASSWORD},
        # the SSL listener requires a client certificate signed by the CA (mutual TLS)
        tls=BrokerTLS(ca.broker_keystore, ca.keystore_password, truststore=ca.ca_pem),
    )
    try:
        kafka.start()
        kafka.wait_ready()
        yield SecureBroker(kafka, ca, other_ca)
    finally:
        gc.collect()  # close leftover client handles before their broker goes away
        kafka.stop()
        shutil.rmtree(state, ignore_errors=True)


def _scram(mechanism: str, password: str = PASSWORD) -> dict[str, Any]:
    return {
        "kafka_sasl_mechanism": mechanism,
        "kafka_sasl_username": USER,
        "kafka_sasl_password": SecretStr(password),  # model_copy does not validate
    }


def security_env(s: Settings) -> dict[str, str]:
    """The ``CDP_KAFKA_*`` security variables a worker process needs for ``s``."""
    env = {"CDP_KAFKA_SECURITY_PROTOCOL": s.kafka_security_protocol}
    for name in (
        "sasl_mechanism",
        "sasl_username",
        "ssl_ca_location",
        "ssl_certificate_location",
        "ssl_key_location",
    ):
        value = getattr(s, f"kafka_{name}")
        if value is not None:
            env[f"CDP_KAFKA_{name.upper()}"] = str(value)
    if s.kafka_sasl_password is not None:
        env["CDP_KAFKA_SASL_PASSWORD"] = s.kafka_sasl_password.get_secret_value()
    return env


LISTENERS = {
    # what self-hosted clusters often run inside a private network
    "sasl_plaintext-scram512": ("SASL_PLAINTEXT", lambda b: _scram("SCRAM-SHA-512")),
    # what managed Kafka services offer: TLS + SCRAM
    "sasl_ssl-scram256": (
        "SASL_SSL",
        lambda b: {**_scram("SCRAM-SHA-256"), "kafka_ssl_ca_location": str(b.ca.ca_pem)},
    ),
    # TLS with a client certificate instead of a password
    "ssl-mutual-tls": (
        "SSL",
        lambda b: {
            "kafka_ssl_ca_location": str(b.ca.ca_pem),
            "kafka_ssl_certificate_location": str(b.ca.client_cert),
            "kafka_ssl_key_location": str(b.ca.client_key),
        },
    ),
}


@pytest.mark.parametrize("listener", list(LISTENERS))
def test_worker_applies_events_over_a_secured_listener(
    broker: SecureBroker, settings: Settings, db: Any, tmp_path: Path, listener: str
) -> None:
    protocol, security = LISTENERS[listener]
    secure = broker.settings(settings, protocol, **security(broker))

    # the listener really is secured: a client without the settings gets nowhere
    bare = settings.model_copy(update={"kafka_bootstrap": secure.bootstrap()})
    with pytest.raises(KafkaError):
        probe(bare, timeout=3)

    created = create_topics(secure)  # admin client (librdkafka)
    assert set(created.values()) == {"created"}
    with Producer(secure, source="security-test") as producer:  # the producer SDK
        producer.send_many(EVENTS)
    assert producer.delivered == len(EVENTS)

    workers = Workers(secure, tmp_path)  # its env points the worker at this listener
    try:
        workers.start("identity", env=security_env(secure))
        workers.wait_drained(["identity"], timeout=180)
    finally:
        workers.stop_all()

    assert db.execute("SELECT count(*) FROM seen_messages").fetchone() == (len(EVENTS),)
    customers = db.execute("SELECT count(DISTINCT customer_id) FROM identities").fetchone()
    assert customers == (3,)  # one per anonymous id
    # the worker's output producer published over the same listener
    resolved = list(read_topic(secure, secure.topic("touchpoints.resolved")))
    assert len(resolved) >= len(EVENTS)


def test_wrong_password_fails_fast_and_says_why(
    broker: SecureBroker, settings: Settings, tmp_path: Path
) -> None:
    wrong = broker.settings(settings, "SASL_PLAINTEXT", **_scram("SCRAM-SHA-512", "not-it"))

    started = time.monotonic()
    with pytest.raises(KafkaAuthError) as err:  # admin client / `cdp topics ...`
        existing_topics(wrong, timeout=30)
    assert time.monotonic() - started < 15, "a refused login must not wait for the timeout"
    assert "Authentication failed" in str(err.value)
    assert "CDP_KAFKA_SASL_PASSWORD" in str(err.value)

    producer = Producer(wrong, source="security-test")  # the producer SDK
    producer.send(EVENTS[0])
    with pytest.raises(DeliveryError, match="Authentication failed"):
        producer.flush(timeout=5)
    producer.abort()  # nothing keeps retrying once the broker is gone

    # a worker exits (EX_CONFIG) with the cause in its log instead of retrying forever
    workers = Workers(wrong, tmp_path)
    try:
        proc = workers.start("identity", env=security_env(wrong))
        try:
            code = proc.wait(90)
        except subprocess.TimeoutExpired:
            pytest.fail(f"worker with a wrong password still running:\n{workers.logs()}")
        assert code == 78, workers.logs()
        assert "Authentication failed" in workers.logs()
    finally:
        workers.stop_all()


def test_untrusted_broker_certificate_is_refused(broker: SecureBroker, settings: Settings) -> None:
    other = broker.settings(
        settings,
        "SASL_SSL",
        **_scram("SCRAM-SHA-512"),
        kafka_ssl_ca_location=str(broker.other_ca.ca_pem),
    )
    with pytest.raises(KafkaAuthError, match="certificate verify failed"):
        probe(other, timeout=30)


def test_invalid_security_settings_stop_the_worker_at_start(
    settings: Settings, tmp_path: Path
) -> None:
    workers = Workers(settings, tmp_path)
    try:
        proc = workers.start(
            "identity",
            env={
                "CDP_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "CDP_KAFKA_SASL_MECHANISM": "scram-sha-512",
            },
        )
        assert proc.wait(60) == 78
        log = workers.logs()
        assert "CDP_KAFKA_SASL_USERNAME" in log and "CDP_KAFKA_SASL_PASSWORD" in log, log
    finally:
        workers.stop_all()
