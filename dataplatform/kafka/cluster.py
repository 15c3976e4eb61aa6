"""Three embedded Kafka nodes forming one cluster, for the failure tests.

A single node cannot show what replication buys (an ``acks=all`` write surviving the loss
of a broker); this starts three :class:`~dataplatform.kafka.node.EmbeddedKafka` nodes that
share one KRaft quorum, and starts and stops them together as a quorum requires.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

from dataplatform.kafka.errors import BrokerError
from dataplatform.kafka.node import READY_TIMEOUT_S, EmbeddedKafka
from dataplatform.kafka.process import free_port, send_signal
from dataplatform.kafka.server_properties import NodeConfig, new_cluster_id


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
            node._launch()
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
                send_signal(pid, signal.SIGTERM)
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
