"""Is the processor making progress? Its group's committed offsets against the ends of the
topics it consumes.

Faust sometimes stops fetching after a rebalance: the worker is alive and says it is
ready, but consumes nothing while input waits (seen in the crash tests after a worker's
group had emptied and it rejoined; faust-streaming issue #629 is one such case). A live
process is therefore not enough: :class:`LagWatch` calls the processor stalled when it
has lag and its committed offsets have not moved for a while, and the worker pool
restarts it (restarting is safe: see docs/stream-processing.md, "Crashes").
"""

from __future__ import annotations

import time

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from dataplatform.config import Settings
from dataplatform.kafka_config import client_config
from dataplatform.stream_processors.config import ProcessorConfig


class LagWatch:
    """Watches the group of one processor deployment."""

    def __init__(self, config: ProcessorConfig, settings: Settings | None = None) -> None:
        conf = client_config(config.bootstrap, settings)
        self.group = config.app_id
        self.topics = [config.topic(p) for p in config.inputs] + [config.contributions_topic]
        self.partitions = config.partitions
        self._admin = AdminClient(conf)
        self._probe = Consumer({**conf, "group.id": f"{config.app_id}-lag-watch", "log_level": 3})
        self.reset()

    def reset(self) -> None:
        self._committed: dict | None = None
        self._since = time.monotonic()

    def lag(self) -> tuple[int, dict[tuple[str, int], int]]:
        """Messages not yet committed by the group, and its committed offsets."""
        request = ConsumerGroupTopicPartitions(self.group)
        result = self._admin.list_consumer_group_offsets([request])[self.group].result(10)
        committed = {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions}
        lag = 0
        for topic in self.topics:
            for p in range(self.partitions):
                _, high = self._probe.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                lag += max(0, high - max(committed.get((topic, p), 0), 0))
        return lag, committed

    def stalled(self, after_s: float) -> bool:
        """True when there is lag and nothing was committed for ``after_s`` seconds."""
        try:
            lag, committed = self.lag()
        except (KafkaException, TimeoutError):   # Kafka busy: no verdict this time
            return False
        if not lag or committed != self._committed:
            self._committed, self._since = committed, time.monotonic()
            return False
        return time.monotonic() - self._since > after_s

    def close(self) -> None:
        self._probe.close()
