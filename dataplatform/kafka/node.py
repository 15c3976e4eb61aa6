"""One embedded Kafka node (KRaft, combined broker+controller): start it, wait until it
answers, stop it, find it again.

A node's data dir holds everything about it: ``server.properties``, the KRaft log dirs,
``node.json`` (ports and cluster id, so a restart reuses them and keeps its topics),
``broker.pid`` and ``logs/server.log``. The CLI finds a running broker by its data dir.
What goes into the properties is :mod:`dataplatform.kafka.server_properties`; how the JVM
is launched is :mod:`dataplatform.kafka.jvm`.
"""

from __future__ import annotations

import json
import logging
import secrets
import signal
import subprocess
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient

from dataplatform.config import get_settings
from dataplatform.kafka.errors import BrokerError
from dataplatform.kafka.jvm import jvm_command, launch, run_storage_format
from dataplatform.kafka.process import free_port, pid_alive, port_open, runs_with_argument, send_signal
from dataplatform.kafka.server_properties import (BrokerSecurity, NodeConfig, new_cluster_id, probe_config,
                                                   scram_credentials_args, security_properties, server_properties)
from dataplatform.kafka.tls import make_broker_tls

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 90.0


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

    def client_settings(self, user: str) -> dict[str, object]:
        """Platform settings (``Settings(**...)``) for ``user`` to reach a secured node."""
        assert self.security and self.tls, "the node has no security"
        return {"kafka_bootstrap_servers": self.bootstrap_servers, "kafka_security_protocol": "SASL_SSL",
                "kafka_sasl_mechanism": self.security.mechanism, "kafka_sasl_username": user,
                "kafka_sasl_password": self.security.users[user], "kafka_ssl_ca_location": self.tls.ca_cert}

    def _properties(self) -> dict[str, str]:
        props = server_properties(self.node, self.data_dir)
        if self.security:
            self.tls = make_broker_tls(self.data_dir / "tls")
            props.update(security_properties(self.node, self.security, self.tls))
        props.update(self.extra_properties)
        return props

    def _write_config(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "logs").mkdir(exist_ok=True)
        self.state_file.write_text(json.dumps(self.node.__dict__, indent=2))
        self.state_file.chmod(0o600)  # holds the broker's own password when secured
        lines = [f"{k}={v}" for k, v in self._properties().items()]
        self.properties_file.write_text("\n".join(lines) + "\n")
        self.properties_file.chmod(0o600)

    def _jvm(self, main: str, *args: str, heap: str = "256m") -> list[str]:
        return jvm_command(main, *args, version=self.version, jars_dir=self._jars_dir,
                           logs_dir=self.data_dir / "logs", heap=heap)

    def _format_storage(self) -> None:
        """Format the KRaft log dir once; ``-g`` makes a second format a no-op."""
        cmd = self._jvm(
            "kafka.tools.StorageTool", "format", "-t", self.node.cluster_id,
            "-c", str(self.properties_file), "-g",
        )
        run_storage_format(cmd + scram_credentials_args(self.node, self.security), self.data_dir)

    def _launch(self) -> None:
        """Start this node's ``kafka.Kafka`` JVM in the background and record its pid."""
        cmd = self._jvm("kafka.Kafka", str(self.properties_file), heap=self.heap)
        self._process = launch(cmd, self.data_dir / "logs" / "stdout.log", self.owned)
        self.pid_file.write_text(str(self._process.pid))

    # -- lifecycle -------------------------------------------------------------------
    def running_pid(self) -> int | None:
        """The pid of this data dir's broker if it is running, else None."""
        if self._process is not None and self._process.poll() is None:
            return self._process.pid
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) and runs_with_argument(pid, str(self.properties_file)) else None

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
        if foreground:
            return self._run_foreground(self._jvm("kafka.Kafka", str(self.properties_file), heap=self.heap))
        self._launch()
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
                    admin = AdminClient(probe_config(self.bootstrap_servers, self.node, self.security, self.data_dir))
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
        send_signal(pid, signal.SIGTERM)
        if not self._wait_exit(pid, timeout):
            log.warning("Kafka node %s did not stop in %ss; killing it", pid, timeout)
            send_signal(pid, signal.SIGKILL)
            self._wait_exit(pid, 10)
        self.pid_file.unlink(missing_ok=True)
        self._process = None
        return True

    def kill(self) -> None:
        """SIGKILL the node, as a crash would: for failure tests."""
        pid = self.running_pid()
        if pid is not None:
            send_signal(pid, signal.SIGKILL)
            self._wait_exit(pid, 10)
        self._process = None

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
