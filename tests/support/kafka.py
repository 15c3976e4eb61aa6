"""Reading and creating topics in tests, with deadlines."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, KafkaError, Message
from confluent_kafka.admin import AdminClient, NewTopic


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create_topic(bootstrap: str, name: str, partitions: int = 1, replication: int = 1,
                 config: dict[str, str] | None = None) -> str:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, partitions, replication, config=config or {})])
    futures[name].result(30)
    return name


def consume(bootstrap: str, topic: str, expected: int, timeout: float = 60.0,
            group: str | None = None, extra: dict | None = None) -> list[Message]:
    """Read ``expected`` messages from the start of ``topic`` in a consumer group, or fail
    at the deadline saying how many arrived."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
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
    from confluent_kafka import TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_name("offsets")})
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[1]
    finally:
        consumer.close()
