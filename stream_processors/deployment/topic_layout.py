"""The processor's topics: created with one partition count, offsets seeded for the group.

Every topic that feeds a table (both inputs, the repartition topic, every changelog) is
co-partitioned, so they must all have the same partition count.
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from dataplatform.config import Settings
from dataplatform.heartbeat import ensure_heartbeat_topic
from dataplatform.kafka_config import client_config
from dataplatform.product_io.dead_letters import ensure_dead_letter_topics
from dataplatform.product_io.names import dead_letter_topic
from dataplatform.topics import TopicSpec, create_missing, wait_for_topics
from dataplatform.stream_processors.config import ProcessorConfig

log = logging.getLogger(__name__)


class TopicLayoutError(RuntimeError):
    """An existing topic has the wrong partition count for the co-partitioned join."""


def ensure_topics(config: ProcessorConfig, settings: Settings | None = None) -> list[str]:
    """Create the input, output, repartition, changelog, dead-letter and heartbeat topics when missing.

    Inputs and the repartition topic are co-partitioned with the tables' changelogs, so
    they must all have ``config.partitions`` partitions; an existing input with another
    count is refused with a message saying how to fix it. The changelogs are created here
    rather than by Faust: a changelog Faust creates itself is missing from its consumer's
    first metadata, and Faust then refuses the table's first write (``PartitionsMismatch``,
    "the changelog has 0 partitions") until the metadata is refreshed minutes later.
    """
    admin = AdminClient(client_config(config.bootstrap, settings))
    inputs = [config.topic(p) for p in config.inputs]
    names = inputs + [config.contributions_topic] + [config.topic(p) for p in config.outputs]
    changelogs = [config.changelog_topic(table) for table in config.tables]
    create_missing(admin, [TopicSpec(n, config.partitions) for n in names]
                   + [TopicSpec(n, config.partitions, {"cleanup.policy": "compact"}) for n in changelogs]
                   + [TopicSpec(config.leader_topic, 1)], settings)
    ensure_dead_letter_topics(inputs, config.bootstrap, settings)
    names += [dead_letter_topic(t) for t in inputs]
    ensure_heartbeat_topic(config.bootstrap, settings)
    metadata, missing = wait_for_topics(admin, names + changelogs)
    if missing:
        raise TopicLayoutError(f"topics {', '.join(missing)} did not appear within 30s")
    for name in inputs + [config.contributions_topic] + changelogs:
        count = len(metadata[name].partitions)
        if count != config.partitions:
            raise TopicLayoutError(
                f"topic {name} has {count} partitions but the processor's tables have {config.partitions}: "
                f"run with --partitions {count}, or recreate the topic with {config.partitions} partitions")
    return names + changelogs


def seed_group_offsets(config: ProcessorConfig, settings: Settings | None = None) -> int:
    """Commit the earliest offset for every consumed partition the group has no offset for.

    Works around a Faust/aiokafka behaviour seen here (faust-streaming issue #629): after a
    rebalance, a partition the group never committed is sometimes never fetched again, so
    a second worker joining before the first event of a topic stalls that topic. With an
    offset committed for every partition up front, a rebalance always has a position to
    seek to. Equivalent to auto.offset.reset=earliest; only possible while the group is
    empty, so a refused commit (a worker is already running) is ignored. Returns how many
    partitions were seeded.
    """
    topics = [config.topic(p) for p in config.inputs] + [config.contributions_topic]
    partitions = [TopicPartition(t, p) for t in topics for p in range(config.partitions)]
    deadline = time.monotonic() + 30
    while True:
        consumer = Consumer({**client_config(config.bootstrap, settings), "group.id": config.app_id,
                             "enable.auto.commit": False})
        try:
            missing = []
            for tp in consumer.committed(partitions, timeout=30):
                if tp.offset < 0:
                    low, _ = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=30)
                    missing.append(TopicPartition(tp.topic, tp.partition, low))
            if missing:
                consumer.commit(offsets=missing, asynchronous=False)
            return len(missing)
        except KafkaException as exc:
            error = exc.args[0]
            # new topics: leaders are still being elected; retry. Anything else (a worker
            # already in the group refuses the commit): leave it to the running group.
            if error.code() in _NOT_READY and time.monotonic() < deadline:
                time.sleep(0.5)
                continue
            log.info("not seeding offsets of %s: %s", config.app_id, error)
            return 0
        finally:
            consumer.close()


_NOT_READY = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
              KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._TIMED_OUT, KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
              KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError.NOT_COORDINATOR}
