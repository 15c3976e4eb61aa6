"""Create each data product's topic as its manifest says; every topic of the platform with
one replication policy.

A product whose ``retentionPeriod`` is 0 keeps current state forever: its topic is
compacted, so the tombstone after a delete makes Kafka forget the entity. Otherwise the
topic deletes events older than the retention period. All product topics get the same
partition count, which the stream processor's co-partitioned join requires. Their
dead-letter topics follow from them: see :mod:`dataplatform.product_io.dead_letters`.

Every topic the platform creates (products, dead letters, the processor's repartition and
changelog topics, heartbeats) goes through :func:`create_missing`, which gives it the
replication of :func:`replication`: ``TOPIC_REPLICATION_FACTOR`` and
``TOPIC_MIN_INSYNC_REPLICAS``, by default 3 and 2 on a cluster of three or more brokers (a
write acknowledged by ``acks=all`` survives the loss of any one broker) and 1 and 1 on a
single node. ``dataplatform topics check`` reports a topic below it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import NamedTuple

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from dataplatform.config import Settings, get_settings
from dataplatform.kafka_config import client_config
from dataplatform.products.product import DataProduct

log = logging.getLogger(__name__)
DEFAULT_PARTITIONS = 4


def topic_config(product: DataProduct) -> dict[str, str]:
    days = product.manifest.retentionPeriod
    if days == 0:
        return {"cleanup.policy": "compact", "retention.ms": "-1"}
    return {"cleanup.policy": "delete", "retention.ms": str(days * 86_400_000)}


class TopicSpec(NamedTuple):
    """A topic to create; its replication comes from the platform's policy."""

    name: str
    partitions: int
    config: dict[str, str] = {}


@dataclass(frozen=True, slots=True)
class Replication:
    """How many copies of each partition, and how many must have a write before it is acknowledged."""

    factor: int
    min_insync: int


class ReplicationError(ValueError):
    """The configured replication cannot be had from this cluster."""


def replication(admin: AdminClient, settings: Settings | None = None) -> Replication:
    """The replication of every topic the platform creates, for the cluster ``admin`` reaches."""
    settings = settings or get_settings()
    brokers = len(admin.list_topics(timeout=30).brokers)
    factor = settings.topic_replication_factor or min(3, max(1, brokers))
    if factor > brokers:
        raise ReplicationError(
            f"TOPIC_REPLICATION_FACTOR={factor} but the cluster has {brokers} broker(s): "
            f"set it to {brokers} or less, or unset it (3 from three brokers, else the broker count)")
    min_insync = settings.topic_min_insync_replicas or (2 if factor >= 3 else 1)
    if min_insync > factor:
        raise ReplicationError(
            f"TOPIC_MIN_INSYNC_REPLICAS={min_insync} is more than the replication factor {factor}: no write "
            f"could ever be acknowledged; set it to {factor - 1 or 1} or less, or unset it")
    return Replication(factor, min_insync)


def ensure_product_topics(products: list[DataProduct], bootstrap: str | None = None,
                          partitions: int = DEFAULT_PARTITIONS, settings: Settings | None = None) -> list[str]:
    """Create missing product topics; return the names that were created."""
    admin = AdminClient(client_config(bootstrap, settings))
    created = create_missing(admin, [TopicSpec(p.topic, partitions, topic_config(p)) for p in products], settings)
    if created:
        log.info("created topics: %s", ", ".join(created))
    return created


def create_missing(admin: AdminClient, topics: list[TopicSpec], settings: Settings | None = None,
                   timeout: float = 30.0) -> list[str]:
    """Create ``topics`` with the platform's :func:`replication`; one that already exists is
    not an error. The names created."""
    if not topics:
        return []
    copies = replication(admin, settings)
    wanted = [NewTopic(t.name, t.partitions, copies.factor,
                       config={"min.insync.replicas": str(copies.min_insync), **t.config}) for t in topics]
    created = []
    for name, future in admin.create_topics(wanted).items():
        try:
            future.result(timeout)
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    return created


def wait_for_topics(admin: AdminClient, names: list[str], timeout: float = 30.0) -> tuple[dict, list[str]]:
    """Topic metadata once every name is visible with its partitions (a topic just created
    takes a moment to appear), or at ``timeout``: (metadata, the names still missing)."""
    deadline = time.monotonic() + timeout
    while True:
        topics = admin.list_topics(timeout=timeout).topics
        missing = [n for n in names if n not in topics or not topics[n].partitions]
        if not missing or time.monotonic() > deadline:
            return topics, missing
        time.sleep(0.2)


@dataclass(frozen=True, slots=True)
class TopicReplication:
    """One topic as the cluster has it, against the platform's :func:`replication`."""

    topic: str
    partitions: int
    factor: int
    min_insync: int
    wanted: Replication

    @property
    def problems(self) -> list[str]:
        found = []
        if self.factor < self.wanted.factor:
            found.append(f"replication factor {self.factor} < {self.wanted.factor}")
        if self.min_insync < self.wanted.min_insync:
            found.append(f"min.insync.replicas {self.min_insync} < {self.wanted.min_insync}")
        return found


def check_replication(admin: AdminClient, topics: list[str], settings: Settings | None = None) -> list[TopicReplication]:
    """Each of ``topics`` that exists, with its replication as the cluster reports it (the
    smallest replica count of its partitions, and its effective ``min.insync.replicas``)."""
    wanted = replication(admin, settings)
    metadata = admin.list_topics(timeout=30).topics
    present = [t for t in topics if t in metadata and metadata[t].partitions]
    if not present:
        return []
    resources = [ConfigResource(ConfigResource.Type.TOPIC, t) for t in present]
    configs = {r.name: f.result(30) for r, f in admin.describe_configs(resources).items()}
    return [TopicReplication(t, len(metadata[t].partitions),
                             min(len(p.replicas) for p in metadata[t].partitions.values()),
                             int(configs[t]["min.insync.replicas"].value), wanted) for t in present]


_NO_LEADER_YET = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
                  KafkaError.UNKNOWN_TOPIC_OR_PART}


def watermarks(consumer: Consumer, partition: TopicPartition, timeout: float = 30.0) -> tuple[int, int]:
    """The partition's (low, high) offsets, waiting out a partition that has no leader yet (a
    topic just created, a broker just restarted) for up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return consumer.get_watermark_offsets(partition, timeout=timeout)
        except KafkaException as exc:
            if exc.args[0].code() not in _NO_LEADER_YET or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
