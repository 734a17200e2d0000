"""Reach the broker with the configured security settings, telling a refused login or
TLS handshake (a configuration error: retrying never helps) apart from a broker that
is merely unreachable.

librdkafka retries a failed authentication forever and reports it only through the
``error_cb`` callback; a metadata request then just times out with "transport
failure". :func:`probe` collects those callbacks so the error names the cause and
the settings to check.
"""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import KafkaError as _RdKafkaError
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from cdp.config import Settings
from cdp.errors import KafkaError

# librdkafka's local error codes for a refused SASL login and a failed TLS handshake
_AUTH_CODES = {_RdKafkaError._AUTHENTICATION, _RdKafkaError._SSL}


class KafkaAuthError(KafkaError):
    """The broker refused the configured credentials or the TLS handshake failed."""


def auth_failure(err: Any) -> str | None:
    """The message of a librdkafka error that is an authentication / TLS failure."""
    code = getattr(err, "code", lambda: None)()
    return str(err.str()) if code in _AUTH_CODES else None


def auth_hint(settings: Settings) -> str:
    """Which settings to check after :func:`auth_failure`."""
    protocol = settings.kafka_security_protocol
    if protocol.startswith("SASL_"):
        hint = (
            f"check CDP_KAFKA_SASL_USERNAME / CDP_KAFKA_SASL_PASSWORD and "
            f"CDP_KAFKA_SASL_MECHANISM={settings.kafka_sasl_mechanism}"
        )
        if protocol == "SASL_SSL":
            hint += " (and CDP_KAFKA_SSL_CA_LOCATION for the TLS handshake)"
        return hint
    if protocol == "SSL":
        return "check CDP_KAFKA_SSL_CA_LOCATION and the client certificate settings"
    return f"check CDP_KAFKA_SECURITY_PROTOCOL={protocol} (does the listener expect TLS/SASL?)"


def probe(settings: Settings, timeout: float = 10.0) -> Any:
    """The cluster metadata, fetched with the configured settings.

    Raises :class:`KafkaAuthError` as soon as the broker refuses the login or the TLS
    handshake fails, :class:`KafkaError` if no metadata arrived within ``timeout``
    seconds and :class:`cdp.errors.ConfigError` for invalid settings."""
    errors: list[Any] = []
    # log_level 0: the failure is reported here, not as librdkafka's stderr lines
    admin = AdminClient(settings.librdkafka(error_cb=errors.append, log_level=0))
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        try:
            return admin.list_topics(timeout=max(0.1, min(1.0, deadline - time.monotonic())))
        except KafkaException as exc:
            last = str(exc.args[0].str()) if exc.args else str(exc)
        admin.poll(0)  # serves error_cb
        for err in errors:
            cause = auth_failure(err)
            if cause is not None:
                raise KafkaAuthError(
                    f"Kafka at {settings.bootstrap()} refused the connection: {cause}; "
                    + auth_hint(settings)
                )
        if time.monotonic() >= deadline:
            detail = str(errors[-1].str()) if errors else last  # e.g. "connection refused"
            raise KafkaError(f"cannot reach Kafka at {settings.bootstrap()}: {detail}")
