"""What Kafka knows about a product: when its last event arrived (freshness against the
declared refresh period) and how far behind each consumer group is (lag)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from dataplatform.kafka_config import client_config
from schemas.product import DataProduct


@dataclass
class Freshness:
    last_event_at: dt.datetime | None
    events: int
    stale: bool
    refresh_period_s: int

    def to_dict(self) -> dict:
        return {"last_event_at": self.last_event_at.isoformat() if self.last_event_at else None,
                "events": self.events, "stale": self.stale, "refresh_period_s": self.refresh_period_s}


def freshness(product: DataProduct, bootstrap: str | None = None, now: dt.datetime | None = None) -> Freshness:
    """Time of the topic's newest record (its Kafka timestamp) against the refresh period."""
    now = now or dt.datetime.now(dt.timezone.utc)
    period = int(product.manifest.refreshPeriod.total_seconds())
    consumer = Consumer({**client_config(bootstrap), "group.id": "dataplatform-catalogue-probe",
                         "enable.auto.commit": False, "log_level": 3})
    try:
        md = consumer.list_topics(product.topic, timeout=10)
        topic = md.topics.get(product.topic)
        if topic is None or topic.error is not None:
            return Freshness(None, 0, True, period)
        newest_ms, total = None, 0
        for p in topic.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(product.topic, p), timeout=10)
            total += high - low
            if high > low:
                consumer.assign([TopicPartition(product.topic, p, high - 1)])
                msg = consumer.poll(5)
                if msg is not None and not msg.error():
                    ts = msg.timestamp()[1]
                    newest_ms = ts if newest_ms is None else max(newest_ms, ts)
        last = dt.datetime.fromtimestamp(newest_ms / 1000, tz=dt.timezone.utc) if newest_ms else None
        stale = last is None or (now - last).total_seconds() > period
        return Freshness(last, total, stale, period)
    finally:
        consumer.close()


def consumer_lag(product: DataProduct, bootstrap: str | None = None) -> list[dict]:
    """Each consumer group reading the product's topic, with its lag per partition summed."""
    admin = AdminClient(client_config(bootstrap))
    groups = admin.list_consumer_groups(request_timeout=10).result()
    group_ids = [g.group_id for g in groups.valid]
    consumer = Consumer({**client_config(bootstrap), "group.id": "dataplatform-catalogue-probe", "log_level": 3})
    result = []
    try:
        md = consumer.list_topics(product.topic, timeout=10)
        if product.topic not in md.topics:
            return []
        partitions = list(md.topics[product.topic].partitions)
        highs = {p: consumer.get_watermark_offsets(TopicPartition(product.topic, p), timeout=10)[1] for p in partitions}
        for gid in group_ids:
            request = [ConsumerGroupTopicPartitions(gid, [TopicPartition(product.topic, p) for p in partitions])]
            try:
                offsets = admin.list_consumer_group_offsets(request)[gid].result()
            except Exception:
                continue
            committed = {tp.partition: tp.offset for tp in offsets.topic_partitions if tp.offset >= 0}
            if not committed:
                continue
            lag = sum(max(0, highs[p] - committed.get(p, 0)) for p in partitions)
            result.append({"group": gid, "lag": lag, "committed": sum(committed.values())})
    finally:
        consumer.close()
    return sorted(result, key=lambda r: r["group"])
