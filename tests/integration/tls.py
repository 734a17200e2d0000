"""A throw-away certificate authority for TLS tests, made with the ``openssl`` CLI: a
self-signed CA, a broker certificate for 127.0.0.1/localhost in a PKCS12 keystore
(what the Kafka broker loads) and a client certificate + key (PEM) for mutual TLS."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CertAuthority:
    ca_pem: Path
    broker_keystore: Path  # PKCS12, password = keystore_password
    keystore_password: str
    client_cert: Path
    client_key: Path  # unencrypted PEM


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{proc.stderr}")


def make_ca(directory: Path, password: str = "keystore-secret") -> CertAuthority:
    if shutil.which("openssl") is None:
        raise RuntimeError("the TLS test needs the openssl CLI (Debian package 'openssl')")
    directory.mkdir(parents=True, exist_ok=True)
    d = directory
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=cdp-test-ca", "-keyout", "ca.key", "-out", "ca.pem",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)  # fmt: skip
    for name, ext in (
        ("broker", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ):
        (d / f"{name}.ext").write_text(ext)
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN=cdp-test-{name}",
                 "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)  # fmt: skip
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext",
                 "-out", f"{name}.pem", cwd=d)  # fmt: skip
    _openssl("pkcs12", "-export", "-in", "broker.pem", "-inkey", "broker.key",
             "-certfile", "ca.pem", "-name", "broker", "-out", "broker.p12",
             "-passout", f"pass:{password}", cwd=d)  # fmt: skip
    return CertAuthority(
        ca_pem=d / "ca.pem",
        broker_keystore=d / "broker.p12",
        keystore_password=password,
        client_cert=d / "client.pem",
        client_key=d / "client.key",
    )
