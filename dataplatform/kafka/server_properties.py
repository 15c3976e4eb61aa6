"""What a node is and what goes into its ``server.properties``: listeners, SASL, TLS, ACLs.

A node's identity (:class:`NodeConfig`: id, ports, cluster id, quorum) is kept in its data
dir so a restart is the same node; its properties follow from that identity and, when it
is secured (:class:`BrokerSecurity`), from the users and the TLS files. Kept apart from
the process that runs them so the settings can be read, and tested, without a JVM.
"""

from __future__ import annotations

import base64
import dataclasses
import uuid
from dataclasses import dataclass
from pathlib import Path

from dataplatform.kafka.tls import TlsFiles, broker_tls_files

BROKER_USER = "dataplatform-broker"
"""The principal the node uses to talk to itself (inter-broker and controller traffic)."""


def new_cluster_id() -> str:
    """16 random bytes, base64url without padding, never starting with '-' (Kafka's rule)."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


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


def server_properties(node: NodeConfig, data_dir: Path) -> dict[str, str]:
    """A plaintext combined broker+controller on loopback, with its log dirs in ``data_dir``."""
    rf = str(node.replication_factor)
    return {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        "controller.quorum.voters": node.voters,
        "listeners": f"PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data_dir / "data"),
        "num.partitions": "1",
        "default.replication.factor": rf,
        "min.insync.replicas": str(node.min_isr),
        "offsets.topic.replication.factor": rf,
        "offsets.topic.num.partitions": "5",
        "transaction.state.log.replication.factor": rf,
        "transaction.state.log.min.isr": str(node.min_isr),
        "transaction.state.log.num.partitions": "5",
        "share.coordinator.state.topic.replication.factor": rf,
        "share.coordinator.state.topic.min.isr": str(node.min_isr),
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "true",
        "log.retention.hours": "-1",
        "log.segment.bytes": str(64 * 1024 * 1024),
        "num.network.threads": "2",
        "num.io.threads": "4",
    }


def security_properties(node: NodeConfig, sec: BrokerSecurity, tls: TlsFiles) -> dict[str, str]:
    """The overrides that put every listener on SASL_SSL (see :class:`BrokerSecurity`)."""
    assert node.broker_password
    mech = sec.mechanism.upper()
    users = {**sec.users, BROKER_USER: node.broker_password}
    plain = "org.apache.kafka.common.security.plain.PlainLoginModule"
    login = "org.apache.kafka.common.security.scram.ScramLoginModule" if mech.startswith("SCRAM") else plain
    # The broker's own credentials (it is a client of itself), then, for PLAIN, the users it accepts.
    own = f'username="{BROKER_USER}" password="{node.broker_password}"'
    plain_users = "".join(f' user_{u}="{p}"' for u, p in users.items())
    props = {
        "listeners": f"SASL_SSL://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}",
        "advertised.listeners": f"SASL_SSL://127.0.0.1:{node.port}",
        "listener.security.protocol.map": "CONTROLLER:SASL_SSL,SASL_SSL:SASL_SSL",
        "inter.broker.listener.name": "SASL_SSL",
        "sasl.enabled.mechanisms": mech,
        "sasl.mechanism.inter.broker.protocol": mech,
        f"listener.name.sasl_ssl.{mech.lower()}.sasl.jaas.config":
            f"{login} required {own}{'' if mech.startswith('SCRAM') else plain_users};",
        "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
        "sasl.mechanism.controller.protocol": "PLAIN",
        "listener.name.controller.plain.sasl.jaas.config":
            f'{plain} required {own} user_{BROKER_USER}="{node.broker_password}";',
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(tls.server_pem),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(tls.ca_cert),
    }
    if sec.acls:
        props["authorizer.class.name"] = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
        props["super.users"] = ";".join(f"User:{u}" for u in (*sec.super_users, BROKER_USER))
        props["allow.everyone.if.no.acl.found"] = "false"
    return props


def scram_credentials_args(node: NodeConfig, sec: BrokerSecurity | None) -> list[str]:
    """``kafka-storage format`` arguments that create the SCRAM users (SCRAM lives in the
    KRaft metadata, so the users must exist before the first start)."""
    if not sec or not sec.mechanism.upper().startswith("SCRAM"):
        return []
    args: list[str] = []
    for user, password in {**sec.users, BROKER_USER: node.broker_password}.items():
        args += ["--add-scram", f"{sec.mechanism.upper()}=[name={user},password={password}]"]
    return args


def probe_config(bootstrap: str, node: NodeConfig, sec: BrokerSecurity | None, data_dir: Path) -> dict[str, object]:
    """librdkafka settings for the readiness check: the node's own principal when secured."""
    conf: dict[str, object] = {"bootstrap.servers": bootstrap, "log_level": 0}
    if sec:
        conf.update({"security.protocol": "SASL_SSL", "sasl.mechanism": sec.mechanism.upper(),
                     "sasl.username": BROKER_USER, "sasl.password": node.broker_password,
                     "ssl.ca.location": str(broker_tls_files(data_dir / "tls").ca_cert)})
    return conf
