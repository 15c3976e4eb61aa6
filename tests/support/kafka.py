"""Reading and creating topics in tests, with deadlines, and looking at consumer groups.

Every client is configured by the platform's own :func:`client_config`, so the helpers
reach a secured broker the same way the platform's components do."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, ConsumerGroupState, KafkaError, Message, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from dataplatform.kafka_config import client_config


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create_topic(bootstrap: str, name: str, partitions: int = 1, replication: int = 1,
                 config: dict[str, str] | None = None) -> str:
    admin = AdminClient(client_config(bootstrap))
    futures = admin.create_topics([NewTopic(name, partitions, replication, config=config or {})])
    futures[name].result(30)
    return name


def consume(bootstrap: str, topic: str, expected: int, timeout: float = 60.0,
            group: str | None = None, extra: dict | None = None) -> list[Message]:
    """Read ``expected`` messages from the start of ``topic`` in a consumer group, or fail
    at the deadline saying how many arrived."""
    consumer = Consumer({
        **client_config(bootstrap),
        "group.id": group or unique_name("test-group"),
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        **(extra or {}),
    })
    consumer.subscribe([topic])
    messages: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while len(messages) < expected and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=1000, timeout=0.5):
                if msg.error():
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise AssertionError(f"consumer error on {topic}: {msg.error()}")
                messages.append(msg)
        if messages:
            consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    assert len(messages) >= expected, f"read {len(messages)} of {expected} messages from {topic} before the deadline"
    return messages


def end_offset(bootstrap: str, topic: str, partition: int = 0) -> int:
    """The high watermark of one partition: how many records it has had."""
    consumer = Consumer({**client_config(bootstrap), "group.id": unique_name("offsets")})
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[1]
    finally:
        consumer.close()


def stable_assignment(bootstrap: str, group: str, members: int) -> list[set[tuple[str, int]]] | None:
    """The partitions each member of ``group`` owns, once the group is stable with ``members``
    members that all own some; None before (joining, rebalancing, or members missing)."""
    admin = AdminClient(client_config(bootstrap))
    description = admin.describe_consumer_groups([group])[group].result(30)
    owned = [{(tp.topic, tp.partition) for tp in m.assignment.topic_partitions} for m in description.members]
    if description.state != ConsumerGroupState.STABLE or len(owned) != members or not all(owned):
        return None
    return owned
