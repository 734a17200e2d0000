"""Apache Kafka, one KRaft node, assembled from Maven Central and run with local Java.

The jars are resolved once with ``mvn dependency:copy-dependencies`` into a cache
shared by every state dir (so test stacks and a second ``up`` need no network).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from cdp.config import PROJECT_ROOT
from cdp.errors import StackError
from cdp.stack.process import read_pid, spawn, stop_pid, tail

POM = PROJECT_ROOT / "deploy" / "local" / "kafka" / "pom.xml"
KAFKA_VERSION = "4.1.1"

SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}{listeners}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}{listeners}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT{protocol_map}
inter.broker.listener.name=PLAINTEXT
log.dirs={data_dir}
num.partitions=6
offsets.topic.replication.factor=1
offsets.topic.num.partitions=12
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
log.retention.hours=168
log.segment.bytes=268435456
num.io.threads=4
num.network.threads=2
{security}"""

# The SASL listeners' mechanisms: SCRAM credentials live in the KRaft metadata log
# (bootstrapped by `kafka-storage format --add-scram`), so no JAAS user list is needed.
SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
SECURE_PROTOCOLS = ("SASL_PLAINTEXT", "SSL", "SASL_SSL")

LOG4J2 = """\
Configuration:
  status: warn
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.server.KafkaConfig
        level: WARN
      - name: org.apache.kafka.common.config.AbstractConfig
        level: WARN
"""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cdp" / f"kafka-{KAFKA_VERSION}"


@dataclass(frozen=True)
class BrokerTLS:
    """The broker's TLS identity for SSL / SASL_SSL listeners: a PKCS12 keystore with
    its key and certificate chain. ``truststore`` (PEM CA certificates), when given,
    makes the SSL listener require client certificates signed by those CAs."""

    keystore: Path
    keystore_password: str
    truststore: Path | None = None


@dataclass
class LocalKafka:
    """One KRaft node. Besides the PLAINTEXT listener on ``port`` (the one the local
    stack and the tests use), ``secure_listeners`` adds listeners by security protocol
    (``SASL_PLAINTEXT``, ``SSL``, ``SASL_SSL`` → port): the SASL ones accept SCRAM-SHA-256
    and SCRAM-SHA-512 for the users in ``scram_users`` (name → password, created at
    format time, so only on a fresh state dir); the TLS ones need ``tls``."""

    state_dir: Path
    port: int
    controller_port: int
    heap: str = "1g"
    secure_listeners: dict[str, int] = field(default_factory=dict)
    scram_users: dict[str, str] = field(default_factory=dict)
    tls: BrokerTLS | None = None

    @property
    def home(self) -> Path:
        return self.state_dir / "kafka"

    @property
    def pid_file(self) -> Path:
        return self.home / "kafka.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "kafka.log"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def pid(self) -> int | None:
        return read_pid(self.pid_file)

    # -- jars -------------------------------------------------------------------
    def ensure_jars(self) -> Path:
        lib = cache_dir() / "lib"
        marker = cache_dir() / ".complete"
        if marker.exists():
            return lib
        if shutil.which("mvn") is None:
            raise StackError(
                "Maven (mvn) is not on PATH: it is needed once to fetch the Kafka jars. "
                "Install it (e.g. `apt-get install maven`) or set CDP_KAFKA_BOOTSTRAP "
                "to an existing broker."
            )
        lib.mkdir(parents=True, exist_ok=True)
        cmd = [
            "mvn", "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
            f"-DoutputDirectory={lib}", "-DincludeScope=runtime",
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise StackError(
                "could not fetch the Kafka jars from Maven Central "
                f"(org.apache.kafka:kafka_2.13:{KAFKA_VERSION}). Check network access to "
                "Maven Central or a mirror in ~/.m2/settings.xml, or set CDP_KAFKA_BOOTSTRAP.\n"
                + (proc.stdout + proc.stderr)[-2000:]
            )
        marker.write_text(KAFKA_VERSION)
        return lib

    # -- lifecycle --------------------------------------------------------------
    def _java(self) -> str:
        java = shutil.which("java")
        if java is None:
            raise StackError("Java 17+ is needed to run Kafka: install a JDK (java not on PATH)")
        return java

    def listener_bootstrap(self, protocol: str) -> str:
        """The bootstrap address of the extra listener for ``protocol``."""
        return f"127.0.0.1:{self.secure_listeners[protocol]}"

    def _security_properties(self) -> tuple[str, str, str]:
        """(listeners suffix, protocol map suffix, extra properties) for the secure
        listeners; all empty without them."""
        unknown = set(self.secure_listeners) - set(SECURE_PROTOCOLS)
        if unknown:
            raise StackError(f"unsupported listener protocols {sorted(unknown)}")
        if not self.secure_listeners:
            return "", "", ""
        listeners = "".join(
            f",{proto}://127.0.0.1:{port}" for proto, port in self.secure_listeners.items()
        )
        protocol_map = "".join(f",{proto}:{proto}" for proto in self.secure_listeners)
        lines = []
        if any(p.startswith("SASL_") for p in self.secure_listeners):
            lines.append(f"sasl.enabled.mechanisms={','.join(SCRAM_MECHANISMS)}")
            for proto in self.secure_listeners:
                if proto.startswith("SASL_"):
                    for mech in SCRAM_MECHANISMS:
                        lines.append(
                            f"listener.name.{proto.lower()}.{mech.lower()}.sasl.jaas.config="
                            "org.apache.kafka.common.security.scram.ScramLoginModule required;"
                        )
        if any(p in ("SSL", "SASL_SSL") for p in self.secure_listeners):
            if self.tls is None:
                raise StackError("SSL / SASL_SSL listeners need a keystore (tls=BrokerTLS)")
            lines += [
                "ssl.keystore.type=PKCS12",
                f"ssl.keystore.location={self.tls.keystore}",
                f"ssl.keystore.password={self.tls.keystore_password}",
                f"ssl.key.password={self.tls.keystore_password}",
            ]
            if self.tls.truststore is not None and "SSL" in self.secure_listeners:
                lines += [
                    "ssl.truststore.type=PEM",
                    f"ssl.truststore.location={self.tls.truststore}",
                    "listener.name.ssl.ssl.client.auth=required",
                ]
        return listeners, protocol_map, "".join(f"{line}\n" for line in lines)

    def _write_config(self) -> Path:
        self.home.mkdir(parents=True, exist_ok=True)
        props = self.home / "server.properties"
        listeners, protocol_map, security = self._security_properties()
        props.write_text(
            SERVER_PROPERTIES.format(
                port=self.port,
                controller_port=self.controller_port,
                data_dir=self.home / "data",
                listeners=listeners,
                protocol_map=protocol_map,
                security=security,
            )
        )
        (self.home / "log4j2.yaml").write_text(LOG4J2)
        return props

    def _format(self, lib: Path, props: Path) -> None:
        if (self.home / "data" / "meta.properties").exists():
            return
        cp = f"{lib}/*"
        cluster_id = subprocess.run(
            [self._java(), "-cp", cp, "kafka.tools.StorageTool", "random-uuid"],
            capture_output=True, text=True, check=True,
        ).stdout.strip().splitlines()[-1]  # fmt: skip
        scram = [
            arg
            for name, password in self.scram_users.items()
            for mech in SCRAM_MECHANISMS
            for arg in ("--add-scram", f"{mech}=[name={name},password={password}]")
        ]
        proc = subprocess.run(
            [self._java(), "-cp", cp, "kafka.tools.StorageTool", "format", "-t", cluster_id,
             "-c", str(props), *scram],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            raise StackError(f"Kafka storage format failed:\n{proc.stdout}{proc.stderr}")

    def start(self) -> None:
        if self.pid() is not None:
            return
        lib = self.ensure_jars()
        props = self._write_config()
        self._format(lib, props)
        cmd = [
            self._java(), f"-Xms{self.heap}", f"-Xmx{self.heap}", "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.yaml'}",
            "-cp", f"{lib}/*", "kafka.Kafka", str(props),
        ]  # fmt: skip
        self._check_ports_free()
        pid = spawn(cmd, self.log_file, self.home)
        self.pid_file.write_text(str(pid))

    def _check_ports_free(self) -> None:
        for port in (self.port, self.controller_port, *self.secure_listeners.values()):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    raise StackError(
                        f"port {port} is already in use by another process: choose other "
                        "ports with CDP_KAFKA_PORT / CDP_KAFKA_CONTROLLER_PORT"
                    )

    def wait_ready(self, timeout: float = 90.0) -> None:
        from confluent_kafka.admin import AdminClient

        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.pid() is None:
                raise StackError(f"Kafka exited during start-up:\n{tail(self.log_file)}")
            try:
                admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
                md = admin.list_topics(timeout=2)
                if md.brokers:
                    return
            except Exception as exc:  # librdkafka raises KafkaException variants
                last = str(exc)
            time.sleep(0.5)
        raise StackError(f"Kafka did not answer metadata requests in {timeout}s ({last})")

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None:
            stop_pid(pid, timeout=30)
        self.pid_file.unlink(missing_ok=True)
