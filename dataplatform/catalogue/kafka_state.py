"""What Kafka knows about the products' topics, read in one pass for all of them.

One probe reads every product topic's size and newest record time, and every consumer
group's members and committed offsets, with one consumer and one admin client. It is
slow (seconds: one request per group, one fetch per changed partition), so the web
service runs it in the background (:mod:`dataplatform.catalogue.facts_cache`) and pages
never wait for it.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from dataplatform.config import Settings
from dataplatform.kafka_config import client_config
from dataplatform.product_io.reader import Position, ProductReader
from dataplatform.products.envelope import from_epoch_ms

log = logging.getLogger(__name__)
PROBE_GROUP = "dataplatform-catalogue-probe"


@dataclass
class TopicFacts:
    """A topic's size and the time of its newest record (None: empty or missing)."""

    exists: bool
    events: int = 0
    high_watermarks: dict[int, int] = field(default_factory=dict)
    last_event_at: dt.datetime | None = None


@dataclass
class GroupFacts:
    """A consumer group: how many members heartbeat now, and its lag per topic it committed on."""

    group: str
    members: int
    state: str
    lag: dict[str, int] = field(default_factory=dict)


@dataclass
class KafkaSnapshot:
    checked_at: dt.datetime
    topics: dict[str, TopicFacts]
    groups: dict[str, GroupFacts]


class KafkaProbe:
    """Reads a :class:`KafkaSnapshot`; keeps its clients and the newest record times it has
    seen, so a refresh fetches a record only from partitions that grew."""

    def __init__(self, bootstrap: str, settings: Settings | None = None) -> None:
        conf = client_config(bootstrap, settings)
        self.bootstrap, self.settings = bootstrap, settings
        self.consumer = Consumer({**conf, "group.id": PROBE_GROUP, "enable.auto.commit": False, "log_level": 3})
        self.admin = AdminClient(conf)
        self._newest: dict[tuple[str, int], tuple[int, int | None]] = {}  # (topic, p) -> (high, timestamp ms)

    def close(self) -> None:
        self.consumer.close()

    def snapshot(self, topics: Iterable[str], timeout: float = 10.0) -> KafkaSnapshot:
        wanted = sorted(set(topics))
        metadata = self.consumer.list_topics(timeout=timeout)
        facts = {t: self._topic(t, metadata, timeout) for t in wanted}
        return KafkaSnapshot(dt.datetime.now(dt.timezone.utc), facts, self._groups(facts, timeout))

    def _topic(self, topic: str, metadata, timeout: float) -> TopicFacts:  # noqa: ANN001
        described = metadata.topics.get(topic)
        if described is None or described.error is not None:
            return TopicFacts(exists=False)
        highs, events, stale_partitions = {}, 0, []
        for p in described.partitions:
            low, high = self.consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
            highs[p], events = high, events + max(0, high - low)
            if high > low and self._newest.get((topic, p), (None,))[0] != high:
                stale_partitions.append(TopicPartition(topic, p, high - 1))
        self._read_newest(stale_partitions, timeout)
        stamps = [self._newest[(topic, p)][1] for p in highs if (topic, p) in self._newest]
        newest = max((s for s in stamps if s is not None), default=None)
        last = from_epoch_ms(newest) if newest else None
        return TopicFacts(exists=True, events=events, high_watermarks=highs, last_event_at=last)

    def _read_newest(self, partitions: list[TopicPartition], timeout: float) -> None:
        """Fetch the last record of each partition (one reader for all of them; undecoded:
        only its time is needed)."""
        if not partitions:
            return
        waiting = {(tp.topic, tp.partition): tp.offset + 1 for tp in partitions}
        position = Position.at({key: high - 1 for key, high in waiting.items()}, every_partition=False)
        deadline = time.monotonic() + timeout
        with ProductReader({t: None for t, _ in waiting}, position, name=PROBE_GROUP, bootstrap=self.bootstrap,
                           settings=self.settings, skip_unreadable=True, log_level=3,
                           **{"isolation.level": "read_uncommitted"}) as reader:
            for record in reader.follow(lambda: not waiting or time.monotonic() >= deadline, until_end=True):
                key = (record.topic, record.partition)
                if key in waiting:
                    self._newest[key] = (waiting.pop(key), record.timestamp_ms)
        for key, high in waiting.items():  # compacted away or unreadable: count it as no timestamp
            self._newest[key] = (high, None)

    def _groups(self, topics: dict[str, TopicFacts], timeout: float) -> dict[str, GroupFacts]:
        listed = self.admin.list_consumer_groups(request_timeout=timeout).result()
        ids = [g.group_id for g in listed.valid if g.group_id != PROBE_GROUP]
        if not ids:
            return {}
        described = {}
        for gid, future in self.admin.describe_consumer_groups(ids, request_timeout=timeout).items():
            try:
                described[gid] = future.result()
            except Exception as exc:  # noqa: BLE001 - a group deleted meanwhile
                log.debug("cannot describe group %s: %s", gid, exc)
        result = {}
        for gid in ids:
            lag = self._group_lag(gid, topics, timeout)
            info = described.get(gid)
            members = len(info.members) if info is not None else 0
            state = str(getattr(info, "state", "UNKNOWN")).rsplit(".", 1)[-1] if info is not None else "UNKNOWN"
            result[gid] = GroupFacts(gid, members, state, lag)
        return result

    def _group_lag(self, gid: str, topics: dict[str, TopicFacts], timeout: float) -> dict[str, int]:
        """Lag per product topic the group has committed offsets on."""
        try:
            offsets = self.admin.list_consumer_group_offsets(
                [ConsumerGroupTopicPartitions(gid)], request_timeout=timeout)[gid].result()
        except Exception as exc:  # noqa: BLE001 - a group deleted meanwhile
            log.debug("cannot read offsets of group %s: %s", gid, exc)
            return {}
        lag: dict[str, int] = {}
        for tp in offsets.topic_partitions:
            facts = topics.get(tp.topic)
            if facts is None or not facts.exists or tp.offset < 0:
                continue
            high = facts.high_watermarks.get(tp.partition, 0)
            lag[tp.topic] = lag.get(tp.topic, 0) + max(0, high - tp.offset)
        return lag
