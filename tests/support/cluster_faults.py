"""Faults on the embedded three-node cluster as an operator meets them, and the clocks that
say how long each component stalled.

The helpers find the broker that leads the most partitions and the active KRaft controller,
and wait on the cluster's own metadata (new leaders elected, every replica back in sync)
rather than for fixed times, so a fault lasts as long as the cluster needs and no longer.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka.admin import AdminClient

from dataplatform.kafka import EmbeddedKafkaCluster
from dataplatform.kafka_config import client_config
from tests.support.waiting import wait_until


def partition_leaders(admin: AdminClient) -> dict[tuple[str, int], int]:
    """The leader of every partition of every topic (-1: none)."""
    md = admin.list_topics(timeout=10)
    return {(t, p.id): p.leader for t, tm in md.topics.items() for p in tm.partitions.values()}


def busiest_leader(admin: AdminClient) -> int:
    """The node id that leads the most partitions."""
    return Counter(partition_leaders(admin).values()).most_common(1)[0][0]


def wait_for_new_leaders(admin: AdminClient, gone: int, timeout: float = 60) -> float:
    """Wait until no partition is led by node ``gone`` or leaderless; the seconds it took."""
    started = time.monotonic()

    def moved() -> bool:
        try:
            return all(leader not in (gone, -1) for leader in partition_leaders(admin).values())
        except Exception:  # noqa: BLE001 - metadata unavailable while the cluster reacts
            return False
    wait_until(moved, timeout=timeout, interval=0.2, message=f"new leaders for node {gone}'s partitions")
    return time.monotonic() - started


def wait_in_sync(admin: AdminClient, replicas: int = 3, timeout: float = 120) -> float:
    """Wait until every partition has all ``replicas`` in sync again, as an operator waits
    before restarting the next broker; the seconds it took."""
    started = time.monotonic()

    def in_sync() -> bool:
        try:
            md = admin.list_topics(timeout=10)
        except Exception:  # noqa: BLE001
            return False
        return all(len(p.isrs) >= replicas for tm in md.topics.values() for p in tm.partitions.values())
    wait_until(in_sync, timeout=timeout, interval=0.5, message="every replica in sync")
    return time.monotonic() - started


def active_controller(cluster: EmbeddedKafkaCluster) -> int:
    """The node id of the KRaft quorum's leader, the active controller.

    Brokers answer a metadata request with a random broker as "controller" under KRaft, so
    the client API cannot tell; each voter records the leader it follows with the epoch in
    its ``quorum-state`` file, and the newest epoch among the running nodes is the answer.
    """
    best: tuple[int, int] | None = None
    for node in cluster.nodes:
        if not node.running_pid():
            continue
        state = json.loads(next(node.data_dir.rglob("__cluster_metadata-0/quorum-state")).read_text())
        if state.get("leaderId", -1) >= 0 and (best is None or state["leaderEpoch"] > best[0]):
            best = (state["leaderEpoch"], state["leaderId"])
    assert best is not None, "no running node knows the quorum's leader"
    return best[1]


@dataclass
class ProgressClock:
    """Samples each component's progress counter and keeps the times it moved, so the stall
    after a fault (the longest time without progress from the fault to the next one) can
    be read afterwards."""

    probes: dict[str, Callable[[], object]]
    interval: float = 0.25
    moved: dict[str, list[float]] = field(default_factory=dict)
    faults: list[tuple[str, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> "ProgressClock":
        self.moved = {name: [] for name in self.probes}
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        last: dict[str, object] = {}
        while not self._stop.wait(self.interval):
            for name, probe in self.probes.items():
                try:
                    value = probe()
                except Exception:  # noqa: BLE001 - a probe failing during a fault is no progress
                    continue
                if name in last and value != last[name]:
                    self.moved[name].append(time.monotonic())
                last[name] = value

    def fault(self, name: str) -> None:
        self.faults.append((name, time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def first_move_after(self, name: str, when: float) -> float:
        """Seconds from ``when`` to the component's next progress (inf: none)."""
        return next((t - when for t in self.moved[name] if t > when), float("inf"))

    def stalls(self, end: float) -> dict[str, dict[str, float]]:
        """{fault: {component: longest seconds without progress between the fault and the
        next fault (or ``end``)}}, counting from the fault itself."""
        out: dict[str, dict[str, float]] = {}
        bounds = [t for _, t in self.faults[1:]] + [end]
        for (fault, start), stop in zip(self.faults, bounds):
            stop = max(stop, start + self.interval)
            out[fault] = {}
            for name, times in self.moved.items():
                inside = [start] + [t for t in times if start < t <= stop] + [stop]
                out[fault][name] = max(b - a for a, b in zip(inside, inside[1:]))
        return out


def stall_table(stalls: dict[str, dict[str, float]]) -> str:
    components = list(next(iter(stalls.values())))
    widths = {c: max(12, len(c) + 2) for c in components}
    lines = [f"{'fault':<34}" + "".join(f"{c:>{widths[c]}}" for c in components)]
    for fault, row in stalls.items():
        lines.append(f"{fault:<34}" + "".join(f"{row[c]:>{widths[c] - 1}.1f}s" for c in components))
    return "\n".join(lines)


def cluster_admin(bootstrap: str) -> AdminClient:
    return AdminClient(client_config(bootstrap))
