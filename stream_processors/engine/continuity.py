"""A partition is processed without holes: from its committed offset after a seek, one record after another.

Faust and aiokafka can drop records fetched around a seek (a worker starting, a rebalance):
the crash tests caught a worker that went on from offset 5 of a partition whose committed
offset was 0, and later committed past the five records it never saw. The causes found are
fixed in :mod:`.faust_patches.recovery`; this check is the backstop for any other. When the first record
a batch holds for a partition, after the partition was seeked, lies beyond its committed
offset, the broker is asked for the first record at or after that offset: the same one (a
compacted topic has holes) and the batch goes on; an earlier one, and the worker stops
before processing or acknowledging anything of the batch (:func:`.batches.fail_stop`), so
a restarted worker reads the partition again from its committed offset. Nothing is lost
and no offset is committed past a record that was never processed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition

from dataplatform.config import Settings
from dataplatform.kafka_config import client_config

# (topic, partition, offset) -> offset of the first record at or after it (None: none yet)
Probe = Callable[[str, int, int], "int | None"]


class Continuity:
    """The offset each partition must go on from: its committed offset after a seek, then the
    offset after the last record processed."""

    def __init__(self, probe: Probe) -> None:
        self.probe = probe
        self._next: dict[Any, int] = {}

    def seeked(self, committed: Mapping[Any, int | None]) -> None:
        """A seek put these partitions at their committed offsets (None: no committed offset)."""
        self._next.update({tp: offset for tp, offset in committed.items() if offset is not None})

    def dropped(self, records: Iterable[tuple[Any, int]]) -> str | None:
        """``(partition, offset)`` pairs of a batch, in order: why it must not be processed (a
        record between the last one processed, or the committed offset, and this one never
        reached the stream), or None. A gap the broker confirms (a compacted topic's hole) is fine."""
        for tp, offset in records:
            expected = self._next.get(tp)
            if expected is not None and offset > expected:
                first = self.probe(tp.topic, tp.partition, expected)
                if first is not None and first < offset:
                    return (f"{tp.topic}[{tp.partition}] went on at offset {offset}, but the record at {first} "
                            f"(expected next: {expected}) never reached the stream")
            if expected is None or offset >= expected:
                self._next[tp] = offset + 1
        return None


def broker_probe(bootstrap: str, settings: Settings | None = None, timeout_s: float = 10.0) -> Probe:
    """A :data:`Probe` reading the partition with one consumer of its own (outside any group),
    opened at the first gap and kept for the next."""
    consumers: list[Consumer] = []

    def first_offset(topic: str, partition: int, offset: int) -> int | None:
        if not consumers:
            consumers.append(Consumer({**client_config(bootstrap, settings), "group.id": "dataplatform-continuity",
                                       "enable.auto.commit": False, "enable.partition.eof": True,
                                       "isolation.level": "read_uncommitted", "log_level": 3}))
        consumer = consumers[0]
        consumer.assign([TopicPartition(topic, partition, offset)])
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or (message.topic(), message.partition()) != (topic, partition):
                continue
            if message.error() is not None:
                if message.error().code() == KafkaError._PARTITION_EOF:
                    return None
                raise RuntimeError(f"reading {topic}[{partition}] from offset {offset}: {message.error()}")
            return message.offset()
        raise RuntimeError(f"reading {topic}[{partition}] from offset {offset}: nothing within {timeout_s:.0f}s")

    return first_offset
