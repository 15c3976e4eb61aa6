"""Is a consumer waiting for brokers, or only for events? Told from librdkafka's statistics.

A consumer cut off from the brokers looks like one with nothing to read: each poll
returns nothing. librdkafka knows the difference, and says it in its statistics (every
``interval_s``): the leader of each partition the consumer fetches, whether its
connection to each broker is up, and whether its group has a coordinator. A partition
whose leader is unknown or not connected, or a group member without its coordinator, is
a Kafka outage for that consumer once two statistics in a row show it. It is logged once
when it starts (what is unreachable) and once when it ends (with the time down, see
:mod:`dataplatform.outages`), and shown as ``dataplatform_kafka_up{component}`` (0 during
it). A leader that moves to a live broker ends it: that is the cluster recovering.
"""

from __future__ import annotations

import json
import logging

from dataplatform.metrics import KAFKA_UP
from dataplatform.outages import Outages

PART = "Kafka"
CONNECTED = ("UP", "UPDATE")   # librdkafka's broker states of a usable connection


class KafkaUnreachable(ConnectionError):
    """What a consumer cannot reach, for the outage's log line."""


def unreachable(stats: dict) -> list[str]:
    """What the consumer whose statistics these are waits for: partitions it fetches whose
    leader is unknown or not connected, and the coordinator of a group it is a member of."""
    up = {b["nodeid"] for b in stats.get("brokers", {}).values() if b.get("nodeid", -1) >= 0
          and b.get("state") in CONNECTED}
    waiting = []
    for topic, described in sorted(stats.get("topics", {}).items()):
        for partition, p in sorted(described.get("partitions", {}).items(), key=lambda item: int(item[0])):
            if int(partition) >= 0 and p.get("fetch_state") not in ("none", "stopping", "stopped") \
                    and p.get("leader", -1) not in up:
                leader = p.get("leader", -1)
                waiting.append(f"{topic}[{partition}] (leader {leader if leader >= 0 else 'none'})")
    group = stats.get("cgrp") or {}
    if group.get("join_state", "init") != "init" and group.get("state") != "up":
        waiting.append(f"the group coordinator ({group.get('state')})")
    return waiting


class KafkaReachability:
    """Watches one consumer: pass :meth:`consumer_config` into its configuration."""

    def __init__(self, component: str, log: logging.Logger, interval_s: float = 2.0) -> None:
        self.component, self.interval_s = component, interval_s
        self.outages = Outages(log, component, interval_s,
                               on_change=lambda _part, up: KAFKA_UP.labels(component).set(1 if up else 0))
        self._seen_before = False   # the previous statistics showed something unreachable
        KAFKA_UP.labels(component).set(1)

    def consumer_config(self) -> dict[str, object]:
        return {"statistics.interval.ms": int(self.interval_s * 1000), "stats_cb": self.on_statistics}

    def on_statistics(self, stats_json: str) -> None:
        waiting = unreachable(json.loads(stats_json))
        if not waiting:
            self.outages.succeeded(PART)
        elif self._seen_before:   # twice in a row: not a connection still being made
            shown = ", ".join(waiting[:5]) + (f" and {len(waiting) - 5} more" if len(waiting) > 5 else "")
            self.outages.failed(PART, KafkaUnreachable(f"cannot reach {shown}"))
        self._seen_before = bool(waiting)

    @property
    def up(self) -> bool:
        return not self.outages.is_down(PART)
