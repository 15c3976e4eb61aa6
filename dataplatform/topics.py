"""Create each data product's topic as its manifest says.

A product whose ``retentionPeriod`` is 0 keeps current state forever: its topic is
compacted, so the tombstone after a delete makes Kafka forget the entity. Otherwise the
topic deletes events older than the retention period. All product topics get the same
partition count, which the stream processor's co-partitioned join requires. Their
dead-letter topics follow from them: see :mod:`dataplatform.product_io.dead_letters`.
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from dataplatform.config import Settings
from dataplatform.kafka_config import client_config
from dataplatform.products.product import DataProduct

log = logging.getLogger(__name__)
DEFAULT_PARTITIONS = 4


def topic_config(product: DataProduct) -> dict[str, str]:
    days = product.manifest.retentionPeriod
    if days == 0:
        return {"cleanup.policy": "compact", "retention.ms": "-1"}
    return {"cleanup.policy": "delete", "retention.ms": str(days * 86_400_000)}


def ensure_product_topics(products: list[DataProduct], bootstrap: str | None = None,
                          partitions: int = DEFAULT_PARTITIONS, replication: int = 1,
                          settings: Settings | None = None) -> list[str]:
    """Create missing product topics; return the names that were created."""
    admin = AdminClient(client_config(bootstrap, settings))
    wanted = [NewTopic(p.topic, partitions, replication, config=topic_config(p)) for p in products]
    created = create_missing(admin, wanted)
    if created:
        log.info("created topics: %s", ", ".join(created))
    return created


def create_missing(admin: AdminClient, topics: list[NewTopic], timeout: float = 30.0) -> list[str]:
    """Create ``topics``; one that already exists is not an error. The names created."""
    created = []
    for name, future in (admin.create_topics(topics).items() if topics else []):
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
