"""The Faust workers' Kafka security: :class:`cdp.config.Settings` → Faust's
``broker_credentials``, the counterpart of :meth:`Settings.librdkafka` (which the
producer SDK, the admin client and the workers' own output producer use).

Faust's aiokafka driver turns the credentials into aiokafka's ``security_protocol``,
``sasl_mechanism``, ``sasl_plain_username``/``sasl_plain_password`` and
``ssl_context`` for its consumer and producer
(``faust.transport.drivers.aiokafka.credentials_to_aiokafka_auth``).
"""

from __future__ import annotations

import ssl

import faust
from faust.types.auth import CredentialsT

from cdp.config import Settings
from cdp.errors import ConfigError


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """A client TLS context that verifies the broker's certificate and host name
    against ``CDP_KAFKA_SSL_CA_LOCATION`` (or the system's CAs), with the client
    certificate for mutual TLS when one is configured."""
    context = ssl.create_default_context(
        ssl.Purpose.SERVER_AUTH, cafile=settings.kafka_ssl_ca_location
    )
    if settings.kafka_ssl_certificate_location and settings.kafka_ssl_key_location:
        password = settings.kafka_ssl_key_password
        try:
            context.load_cert_chain(
                settings.kafka_ssl_certificate_location,
                settings.kafka_ssl_key_location,
                password.get_secret_value() if password is not None else None,
            )
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(
                "cannot load the TLS client certificate "
                f"(CDP_KAFKA_SSL_CERTIFICATE_LOCATION={settings.kafka_ssl_certificate_location}, "
                f"CDP_KAFKA_SSL_KEY_LOCATION={settings.kafka_ssl_key_location}): {exc}"
            ) from exc
    return context


def broker_credentials(settings: Settings) -> CredentialsT | None:
    """Faust's ``broker_credentials`` for the settings (``None``: PLAINTEXT).

    Raises :class:`ConfigError` (naming the environment variables) for invalid
    settings, like :meth:`Settings.librdkafka` does."""
    settings.check_kafka_security()
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        credentials: CredentialsT = faust.SSLCredentials(ssl_context(settings))
        return credentials
    # SASL_PLAINTEXT or SASL_SSL; check_kafka_security made sure all three are set
    assert settings.kafka_sasl_password is not None
    credentials = faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=settings.kafka_sasl_password.get_secret_value(),
        mechanism=settings.kafka_sasl_mechanism,
        # a context makes the protocol SASL_SSL, none SASL_PLAINTEXT
        ssl_context=ssl_context(settings) if protocol == "SASL_SSL" else None,
    )
    return credentials
