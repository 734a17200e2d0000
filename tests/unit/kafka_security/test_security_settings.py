"""Kafka security settings → librdkafka config and Faust broker credentials, and the
configuration errors for invalid combinations (no broker needed)."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import faust
import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from cdp.config import Settings
from cdp.errors import ConfigError
from streams.security import broker_credentials
from tests.integration.tls import CertAuthority, make_ca


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertAuthority:
    return make_ca(tmp_path_factory.mktemp("ca"))


def scram(mechanism: str = "SCRAM-SHA-512", **more: Any) -> Settings:
    return Settings(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism=mechanism,
        kafka_sasl_username="alice",
        kafka_sasl_password="pw",
        **more,
    )


def test_plaintext_is_the_default_and_needs_no_credentials() -> None:
    s = Settings(kafka_bootstrap="k:9092")
    assert broker_credentials(s) is None
    assert s.librdkafka() == {"bootstrap.servers": "k:9092", "security.protocol": "PLAINTEXT"}


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"])
def test_sasl_plaintext(mechanism: str) -> None:
    s = scram(mechanism)
    creds = broker_credentials(s)
    assert isinstance(creds, faust.SASLCredentials)
    assert creds.ssl_context is None
    assert credentials_to_aiokafka_auth(creds) == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": mechanism,
        "sasl_plain_username": "alice",
        "sasl_plain_password": "pw",
        "ssl_context": None,
    }
    conf = s.librdkafka()
    assert conf["security.protocol"] == "SASL_PLAINTEXT"
    assert (conf["sasl.mechanism"], conf["sasl.username"], conf["sasl.password"]) == (
        mechanism,
        "alice",
        "pw",
    )
    assert "pw" not in repr(s) and "pw" not in repr(creds)


def test_sasl_ssl_with_a_ca_file(ca: CertAuthority) -> None:
    s = scram(kafka_ssl_ca_location=str(ca.ca_pem)).model_copy(
        update={"kafka_security_protocol": "SASL_SSL"}
    )
    auth = credentials_to_aiokafka_auth(broker_credentials(s))
    assert auth["security_protocol"] == "SASL_SSL"
    assert auth["sasl_mechanism"] == "SCRAM-SHA-512"
    context = auth["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "cdp-test-ca"),),)]
    assert s.librdkafka()["ssl.ca.location"] == str(ca.ca_pem)


def test_sasl_ssl_without_a_ca_file_trusts_the_system_cas() -> None:
    s = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="u",
        kafka_sasl_password="p",
    )
    auth = credentials_to_aiokafka_auth(broker_credentials(s))
    assert auth["security_protocol"] == "SASL_SSL"
    assert auth["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    assert "ssl.ca.location" not in s.librdkafka()


def test_ssl_with_a_client_certificate(ca: CertAuthority) -> None:
    s = Settings(
        kafka_security_protocol="SSL",
        kafka_ssl_ca_location=str(ca.ca_pem),
        kafka_ssl_certificate_location=str(ca.client_cert),
        kafka_ssl_key_location=str(ca.client_key),
    )
    creds = broker_credentials(s)
    assert isinstance(creds, faust.SSLCredentials)
    auth = credentials_to_aiokafka_auth(creds)
    assert auth == {"security_protocol": "SSL", "ssl_context": creds.context}
    conf = s.librdkafka()
    assert conf["ssl.certificate.location"] == str(ca.client_cert)
    assert conf["ssl.key.location"] == str(ca.client_key)


def test_a_client_key_that_does_not_match_is_a_config_error(ca: CertAuthority) -> None:
    s = Settings(
        kafka_security_protocol="SSL",
        kafka_ssl_certificate_location=str(ca.ca_pem),  # a certificate of another key
        kafka_ssl_key_location=str(ca.client_key),
    )
    with pytest.raises(ConfigError, match="CDP_KAFKA_SSL_CERTIFICATE_LOCATION"):
        broker_credentials(s)


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "CDP_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",  # case as librdkafka accepts it
        "CDP_KAFKA_SASL_MECHANISM": "scram-sha-512",
        "CDP_KAFKA_SASL_USERNAME": "svc",
        "CDP_KAFKA_SASL_PASSWORD": "pw",
        "CDP_KAFKA_SSL_CA_LOCATION": "",  # empty (e.g. a blank Secret entry) = unset
        "CDP_KAFKA_SSL_KEY_PASSWORD": "",
    }.items():
        monkeypatch.setenv(name, value)
    s = Settings()
    assert (s.kafka_security_protocol, s.kafka_sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-512")
    assert s.kafka_ssl_ca_location is None and s.kafka_ssl_key_password is None
    s.check_kafka_security()


INVALID: list[tuple[dict[str, Any], list[str]]] = [
    ({"kafka_security_protocol": "TLS"}, ["CDP_KAFKA_SECURITY_PROTOCOL='TLS'", "SASL_SSL"]),
    (
        {"kafka_security_protocol": "SASL_SSL"},
        ["CDP_KAFKA_SASL_MECHANISM", "CDP_KAFKA_SASL_USERNAME", "CDP_KAFKA_SASL_PASSWORD"],
    ),
    (
        {
            "kafka_security_protocol": "SASL_PLAINTEXT",
            "kafka_sasl_mechanism": "SCRAM-SHA-512",
            "kafka_sasl_username": "u",
        },
        ["needs CDP_KAFKA_SASL_PASSWORD"],
    ),
    (
        {
            "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": "GSSAPI",
            "kafka_sasl_username": "u",
            "kafka_sasl_password": "p",
        },
        ["CDP_KAFKA_SASL_MECHANISM='GSSAPI'", "SCRAM-SHA-512"],
    ),
    # credentials given, but the protocol would silently not use them
    (
        {
            "kafka_sasl_mechanism": "SCRAM-SHA-512",
            "kafka_sasl_username": "u",
            "kafka_sasl_password": "p",
        },
        [
            "CDP_KAFKA_SASL_MECHANISM, CDP_KAFKA_SASL_USERNAME, CDP_KAFKA_SASL_PASSWORD set",
            "CDP_KAFKA_SECURITY_PROTOCOL=PLAINTEXT",
        ],
    ),
    (
        {
            "kafka_security_protocol": "SASL_PLAINTEXT",
            "kafka_sasl_mechanism": "PLAIN",
            "kafka_sasl_username": "u",
            "kafka_sasl_password": "p",
            "kafka_ssl_ca_location": "/ca.pem",
        },
        ["CDP_KAFKA_SSL_CA_LOCATION set", "does not use TLS"],
    ),
    (
        {"kafka_security_protocol": "SSL", "kafka_ssl_certificate_location": "/c.pem"},
        ["CDP_KAFKA_SSL_CERTIFICATE_LOCATION", "CDP_KAFKA_SSL_KEY_LOCATION"],
    ),
    (
        {"kafka_security_protocol": "SSL", "kafka_ssl_ca_location": "/nonexistent/ca.pem"},
        ["CDP_KAFKA_SSL_CA_LOCATION=/nonexistent/ca.pem: no such file"],
    ),
]


@pytest.mark.parametrize(("fields", "expected"), INVALID)
def test_invalid_combinations_name_the_variables(
    fields: dict[str, Any], expected: list[str], tmp_path: Path
) -> None:
    s = Settings(**fields)
    for build in (s.check_kafka_security, s.librdkafka, lambda: broker_credentials(s)):
        with pytest.raises(ConfigError) as err:
            build()
        for text in expected:
            assert text in str(err.value)
