"""Run Apache Kafka (KRaft, combined broker+controller) from its jars, without Docker.

A node's data dir holds everything about it: ``server.properties``, the KRaft log dirs,
``node.json`` (ports and cluster id, so a restart reuses them and keeps its topics),
``broker.pid`` and ``logs/server.log``. The CLI finds a running broker by its data dir.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from dataplatform.kafka.jars import resolve_jars

log = logging.getLogger(__name__)

LOG4J_CONFIG = Path(__file__).with_name("log4j2.yaml")
READY_TIMEOUT_S = 90.0


class BrokerError(RuntimeError):
    """The embedded broker could not be started, reached or stopped."""


def free_port() -> int:
    """A loopback TCP port that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def new_cluster_id() -> str:
    """16 random bytes, base64url without padding, never starting with '-' (Kafka's rule)."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


BROKER_USER = "dataplatform-broker"
"""The principal the node uses to talk to itself (inter-broker and controller traffic)."""


@dataclass
class BrokerSecurity:
    """Run the node with every listener on SASL_SSL, SCRAM users and, optionally, ACLs.

    There is no plaintext port and no ANONYMOUS principal: clients reach the SASL_SSL
    listener with a user name and password, trusting ``tls.ca_cert``; the broker talks to
    itself on that listener as ``BROKER_USER`` (SCRAM), and to its controller over TLS with
    SASL/PLAIN (KRaft controllers cannot use SCRAM: its credentials live in the metadata
    the controller serves). ``BROKER_USER``'s password is random per data dir. With
    ``acls=True`` nothing is allowed that an ACL does not grant, except to the super users
    (``super_users`` and ``BROKER_USER``).
    """

    users: dict[str, str]
    mechanism: str = "SCRAM-SHA-512"
    acls: bool = False
    super_users: tuple[str, ...] = ("admin",)


@dataclass
class NodeConfig:
    """What a node needs to be the same node after a restart."""

    node_id: int
    port: int
    controller_port: int
    cluster_id: str
    voters: str  # controller.quorum.voters, e.g. "1@127.0.0.1:9093"
    replication_factor: int = 1
    min_isr: int = 1
    broker_password: str | None = None  # BROKER_USER's, when the node is secured

    @classmethod
    def from_json(cls, data: dict) -> "NodeConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def _set_parent_death_signal() -> None:
    """Ask Linux to SIGKILL the broker if the process that owns it dies (tests, `run`)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # pragma: no cover - not Linux
        pass


class EmbeddedKafka:
    """One Kafka node whose whole state lives in ``data_dir``.

    >>> broker = EmbeddedKafka(Path("/tmp/k"))
    >>> broker.start()          # returns once a metadata request is answered
    '127.0.0.1:40123'
    >>> broker.stop()

    ``owned=True`` ties the JVM's life to this Python process (it is killed if we die),
    which is what tests and ``dataplatform run`` want; the CLI's background ``kafka start``
    passes ``owned=False`` so the broker outlives the command.
    """

    def __init__(
        self,
        data_dir: Path | str,
        *,
        port: int | None = None,
        version: str | None = None,
        heap: str | None = None,
        jars_dir: Path | None = None,
        extra_properties: dict[str, str] | None = None,
        node: NodeConfig | None = None,
        owned: bool = True,
        security: BrokerSecurity | None = None,
    ) -> None:
        from dataplatform.config import get_settings

        settings = get_settings()
        self.data_dir = Path(data_dir).resolve()
        self.version = version or settings.kafka_version
        self.heap = heap or settings.kafka_heap
        self._jars_dir = jars_dir or settings.kafka_jars_dir
        self.extra_properties = dict(extra_properties or {})
        self.owned = owned
        self._requested_port = port
        self._node = node
        self._process: subprocess.Popen | None = None
        self.security = security
        self.tls = None

    # -- paths -----------------------------------------------------------------------
    @property
    def pid_file(self) -> Path:
        return self.data_dir / "broker.pid"

    @property
    def state_file(self) -> Path:
        return self.data_dir / "node.json"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "logs" / "server.log"

    @property
    def properties_file(self) -> Path:
        return self.data_dir / "server.properties"

    # -- configuration ---------------------------------------------------------------
    def _load_or_create_node(self) -> NodeConfig:
        if self._node is not None:
            return self._node
        if self.state_file.exists():
            node = NodeConfig.from_json(json.loads(self.state_file.read_text()))
            if self._requested_port and self._requested_port != node.port:
                raise BrokerError(
                    f"{self.data_dir} belongs to a broker on port {node.port}; "
                    f"use that port, or another --data-dir for port {self._requested_port}"
                )
            return node
        port = self._requested_port or free_port()
        cport = free_port()
        return NodeConfig(
            node_id=1, port=port, controller_port=cport, cluster_id=new_cluster_id(),
            voters=f"1@127.0.0.1:{cport}",
            broker_password=secrets.token_urlsafe(24) if self.security else None,
        )

    @property
    def node(self) -> NodeConfig:
        if self._node is None:
            self._node = self._load_or_create_node()
        return self._node

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.node.port}"

    def _probe_config(self) -> dict[str, object]:
        """librdkafka settings for the readiness check: the node's own principal when secured."""
        conf: dict[str, object] = {"bootstrap.servers": self.bootstrap_servers, "log_level": 0}
        if self.security:
            from dataplatform.kafka.tls import broker_tls_files

            conf.update({"security.protocol": "SASL_SSL", "sasl.mechanism": self.security.mechanism.upper(),
                         "sasl.username": BROKER_USER, "sasl.password": self.node.broker_password,
                         "ssl.ca.location": str(broker_tls_files(self.data_dir / "tls").ca_cert)})
        return conf

    def client_settings(self, user: str) -> dict[str, object]:
        """Platform settings (``Settings(**...)``) for ``user`` to reach a secured node."""
        assert self.security and self.tls, "the node has no security"
        return {"kafka_bootstrap_servers": self.bootstrap_servers, "kafka_security_protocol": "SASL_SSL",
                "kafka_sasl_mechanism": self.security.mechanism, "kafka_sasl_username": user,
                "kafka_sasl_password": self.security.users[user], "kafka_ssl_ca_location": self.tls.ca_cert}

    def _properties(self) -> dict[str, str]:
        n = self.node
        rf = str(n.replication_factor)
        props = {
            "process.roles": "broker,controller",
            "node.id": str(n.node_id),
            "controller.quorum.voters": n.voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{n.port},CONTROLLER://127.0.0.1:{n.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{n.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data_dir / "data"),
            "num.partitions": "1",
            "default.replication.factor": rf,
            "min.insync.replicas": str(n.min_isr),
            "offsets.topic.replication.factor": rf,
            "offsets.topic.num.partitions": "5",
            "transaction.state.log.replication.factor": rf,
            "transaction.state.log.min.isr": str(n.min_isr),
            "transaction.state.log.num.partitions": "5",
            "share.coordinator.state.topic.replication.factor": rf,
            "share.coordinator.state.topic.min.isr": str(n.min_isr),
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "true",
            "log.retention.hours": "-1",
            "log.segment.bytes": str(64 * 1024 * 1024),
            "num.network.threads": "2",
            "num.io.threads": "4",
        }
        if self.security:
            props.update(self._security_properties())
        props.update(self.extra_properties)
        return props

    def _security_properties(self) -> dict[str, str]:
        from dataplatform.kafka.tls import make_broker_tls

        n, sec = self.node, self.security
        assert sec is not None and n.broker_password
        self.tls = make_broker_tls(self.data_dir / "tls")
        mech = sec.mechanism.upper()
        users = {**sec.users, BROKER_USER: n.broker_password}
        plain = "org.apache.kafka.common.security.plain.PlainLoginModule"
        login = "org.apache.kafka.common.security.scram.ScramLoginModule" if mech.startswith("SCRAM") else plain
        # The broker's own credentials (it is a client of itself), then, for PLAIN, the users it accepts.
        own = f'username="{BROKER_USER}" password="{n.broker_password}"'
        plain_users = "".join(f' user_{u}="{p}"' for u, p in users.items())
        props = {
            "listeners": f"SASL_SSL://127.0.0.1:{n.port},CONTROLLER://127.0.0.1:{n.controller_port}",
            "advertised.listeners": f"SASL_SSL://127.0.0.1:{n.port}",
            "listener.security.protocol.map": "CONTROLLER:SASL_SSL,SASL_SSL:SASL_SSL",
            "inter.broker.listener.name": "SASL_SSL",
            "sasl.enabled.mechanisms": mech,
            "sasl.mechanism.inter.broker.protocol": mech,
            f"listener.name.sasl_ssl.{mech.lower()}.sasl.jaas.config":
                f"{login} required {own}{'' if mech.startswith('SCRAM') else plain_users};",
            "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
            "sasl.mechanism.controller.protocol": "PLAIN",
            "listener.name.controller.plain.sasl.jaas.config":
                f'{plain} required {own} user_{BROKER_USER}="{n.broker_password}";',
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(self.tls.server_pem),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.tls.ca_cert),
        }
        if sec.acls:
            props["authorizer.class.name"] = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
            props["super.users"] = ";".join(f"User:{u}" for u in (*sec.super_users, BROKER_USER))
            props["allow.everyone.if.no.acl.found"] = "false"
        return props

    def _write_config(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "logs").mkdir(exist_ok=True)
        self.state_file.write_text(json.dumps(self.node.__dict__, indent=2))
        self.state_file.chmod(0o600)  # holds the broker's own password when secured
        lines = [f"{k}={v}" for k, v in self._properties().items()]
        self.properties_file.write_text("\n".join(lines) + "\n")
        self.properties_file.chmod(0o600)

    def _java(self) -> str:
        java_home = os.environ.get("JAVA_HOME")
        java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
        if not java or not Path(java).exists():
            raise BrokerError(
                "Java is not installed: the embedded Kafka broker needs Java 17+ "
                "(apt-get install openjdk-17-jre-headless), or set KAFKA_BOOTSTRAP_SERVERS."
            )
        return java

    def _classpath(self) -> str:
        jars = resolve_jars(self.version, self._jars_dir)
        return f"{jars}/*"

    def _jvm(self, main: str, *args: str, heap: str = "256m") -> list[str]:
        return [
            self._java(), f"-Xmx{heap}", f"-Xms{heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            f"-Dkafka.logs.dir={self.data_dir / 'logs'}",
            "-cp", self._classpath(), main, *args,
        ]

    def _format_storage(self) -> None:
        """Format the KRaft log dir once; ``-g`` makes a second format a no-op."""
        cmd = self._jvm(
            "kafka.tools.StorageTool", "format", "-t", self.node.cluster_id,
            "-c", str(self.properties_file), "-g",
        )
        if self.security and self.security.mechanism.upper().startswith("SCRAM"):
            for user, password in {**self.security.users, BROKER_USER: self.node.broker_password}.items():
                cmd += ["--add-scram", f"{self.security.mechanism.upper()}=[name={user},password={password}]"]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise BrokerError(
                f"formatting Kafka storage in {self.data_dir} failed:\n"
                f"{(result.stdout + result.stderr)[-3000:]}"
            )

    # -- lifecycle -------------------------------------------------------------------
    def running_pid(self) -> int | None:
        """The pid of this data dir's broker if it is running, else None."""
        if self._process is not None and self._process.poll() is None:
            return self._process.pid
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) and self._is_kafka(pid) else None

    def _is_kafka(self, pid: int) -> bool:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return True  # not Linux: trust the pid file
        return str(self.properties_file).encode() in cmdline

    def start(self, timeout: float = READY_TIMEOUT_S, foreground: bool = False) -> str:
        """Start the node (if it is not already running) and wait until it serves metadata."""
        if self.running_pid():
            self.wait_ready(timeout)
            return self.bootstrap_servers
        self._write_config()
        if port_open(self.node.port):
            raise BrokerError(
                f"port {self.node.port} is already in use by another program; "
                f"choose another with --port or stop what listens there"
            )
        self._format_storage()
        cmd = self._jvm("kafka.Kafka", str(self.properties_file), heap=self.heap)
        if foreground:
            return self._run_foreground(cmd)
        stdout = open(self.data_dir / "logs" / "stdout.log", "ab")
        self._process = subprocess.Popen(
            cmd, stdout=stdout, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_set_parent_death_signal if self.owned else None,
        )
        stdout.close()
        self.pid_file.write_text(str(self._process.pid))
        log.info("started Kafka node %s (pid %s) in %s", self.node.node_id, self._process.pid, self.data_dir)
        try:
            self.wait_ready(timeout)
        except BrokerError:
            self.stop()
            raise
        return self.bootstrap_servers

    def _run_foreground(self, cmd: list[str]) -> str:
        proc = subprocess.Popen(cmd)
        self.pid_file.write_text(str(proc.pid))
        try:
            proc.wait()
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        finally:
            self.pid_file.unlink(missing_ok=True)
        return self.bootstrap_servers

    def wait_ready(self, timeout: float = READY_TIMEOUT_S, expected_brokers: int = 1) -> None:
        """Wait until the listener accepts TCP and a metadata request lists the brokers."""
        from confluent_kafka.admin import AdminClient

        deadline = time.monotonic() + timeout
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise BrokerError(
                    f"Kafka node {self.node.node_id} exited with code {self._process.returncode} "
                    f"while starting. Last lines of {self.log_file}:\n{self.log_tail()}"
                )
            if port_open(self.node.port):
                try:
                    admin = AdminClient(self._probe_config())
                    md = admin.list_topics(timeout=5)
                    if len(md.brokers) >= expected_brokers:
                        return
                    last_error = f"{len(md.brokers)} of {expected_brokers} brokers registered"
                except Exception as exc:  # KafkaException while the node comes up
                    last_error = str(exc)
            time.sleep(0.2)
        raise BrokerError(
            f"Kafka at {self.bootstrap_servers} did not answer a metadata request within "
            f"{timeout:.0f}s ({last_error}). Last lines of {self.log_file}:\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 60.0) -> bool:
        """Stop the node gracefully (SIGTERM), then SIGKILL after ``timeout``. True if it ran."""
        pid = self.running_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        self._signal(pid, signal.SIGTERM)
        if not self._wait_exit(pid, timeout):
            log.warning("Kafka node %s did not stop in %ss; killing it", pid, timeout)
            self._signal(pid, signal.SIGKILL)
            self._wait_exit(pid, 10)
        self.pid_file.unlink(missing_ok=True)
        self._process = None
        return True

    def kill(self) -> None:
        """SIGKILL the node, as a crash would: for failure tests."""
        pid = self.running_pid()
        if pid is not None:
            self._signal(pid, signal.SIGKILL)
            self._wait_exit(pid, 10)
        self._process = None

    def _signal(self, pid: int, sig: int) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.pid == pid:
                if self._process.poll() is not None:
                    return True
            elif not pid_alive(pid):
                return True
            time.sleep(0.1)
        return False

    def status(self) -> dict:
        pid = self.running_pid()
        state = {"data_dir": str(self.data_dir), "running": pid is not None, "pid": pid}
        if self.state_file.exists():
            node = json.loads(self.state_file.read_text())
            state["bootstrap_servers"] = f"127.0.0.1:{node['port']}"
            state["cluster_id"] = node["cluster_id"]
        return state

    def log_tail(self, lines: int = 40) -> str:
        for path in (self.log_file, self.data_dir / "logs" / "stdout.log"):
            if path.exists() and path.stat().st_size:
                return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        return "(no log written)"

    def __enter__(self) -> "EmbeddedKafka":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class EmbeddedKafkaCluster:
    """Three combined broker+controller nodes on loopback, for failure tests.

    Replication factor 3 and ``min.insync.replicas=2``: an ``acks=all`` write survives
    the loss of any one node.
    """

    def __init__(self, data_dir: Path | str, size: int = 3, **kwargs: object) -> None:
        self.data_dir = Path(data_dir).resolve()
        state = self.data_dir / "cluster.json"
        if state.exists():
            nodes = [NodeConfig.from_json(n) for n in json.loads(state.read_text())]
        else:
            cluster_id = new_cluster_id()
            ports = [(free_port(), free_port()) for _ in range(size)]
            voters = ",".join(f"{i + 1}@127.0.0.1:{c}" for i, (_, c) in enumerate(ports))
            nodes = [
                NodeConfig(node_id=i + 1, port=p, controller_port=c, cluster_id=cluster_id,
                           voters=voters, replication_factor=min(3, size), min_isr=min(2, size))
                for i, (p, c) in enumerate(ports)
            ]
            self.data_dir.mkdir(parents=True, exist_ok=True)
            state.write_text(json.dumps([n.__dict__ for n in nodes], indent=2))
        kwargs.setdefault("heap", "384m")
        # Notice a dead node within seconds, not the default 9 s.
        kwargs.setdefault("extra_properties", {
            "broker.session.timeout.ms": "4000", "broker.heartbeat.interval.ms": "500",
        })
        self.nodes = [
            EmbeddedKafka(self.data_dir / f"node-{n.node_id}", node=n, **kwargs) for n in nodes
        ]

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(n.bootstrap_servers for n in self.nodes)

    def start(self, timeout: float = READY_TIMEOUT_S * 2) -> str:
        # The quorum needs a majority before any node answers, so launch all, then wait.
        procs = []
        for node in self.nodes:
            if node.running_pid():
                continue
            node._write_config()
            node._format_storage()
            procs.append(node)
        for node in procs:
            node._process = subprocess.Popen(
                node._jvm("kafka.Kafka", str(node.properties_file), heap=node.heap),
                stdout=open(node.data_dir / "logs" / "stdout.log", "ab"),
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=_set_parent_death_signal if node.owned else None,
            )
            node.pid_file.write_text(str(node._process.pid))
        try:
            for node in self.nodes:
                node.wait_ready(timeout, expected_brokers=len(self.nodes))
        except BrokerError:
            self.stop()
            raise
        return self.bootstrap_servers

    def stop(self, timeout: float = 20.0) -> None:
        """Stop all nodes together: one by one, the last ones would wait for a quorum
        that has already gone."""
        pids = [(node, node.running_pid()) for node in self.nodes]
        for node, pid in pids:
            if pid:
                node._signal(pid, signal.SIGTERM)
        for node, pid in pids:
            if pid and not node._wait_exit(pid, timeout):
                node.kill()
            node.pid_file.unlink(missing_ok=True)
            node._process = None

    def __enter__(self) -> "EmbeddedKafkaCluster":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
