"""Prometheus metrics: the platform's figures for the monitoring operations teams already run.

Two kinds of metric, both served by the web service at ``/metrics``:

* **measured in this process** (counters and histograms in prometheus-client's default
  registry): warning transitions read, sink rows written and how long each sink commit
  took, the outbox relay's lag and rows published, bridge messages by outcome. In
  ``dataplatform run`` the sinks and the housing simulator's relay share the web service's
  process; a sink or relay started
  alone serves its own with ``--metrics-port``.
* **read from elsewhere at scrape time** (:class:`PlatformCollector`): consumer lag per
  group and partition, events per topic, dead letters per topic (from a Kafka snapshot
  refreshed in the background, so a scrape never waits on Kafka), current warnings by
  severity (from the database) and the processors' heartbeats (step time, events in and
  out, heartbeat age).

Metric names and example alert rules: docs/operations.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from dataplatform.background import BackgroundReader
from dataplatform.config import Settings
from dataplatform.heartbeat import HeartbeatBoard
from dataplatform.products.envelope import epoch_ms
from dataplatform.kafka_config import client_config
from dataplatform.product_io.names import DEAD_LETTER_SUFFIX

log = logging.getLogger(__name__)
PREFIX = "dataplatform"

WARNING_TRANSITIONS = Counter(f"{PREFIX}_warning_transitions", "Warning transitions read from the warnings product.",
                              ["severity", "transition"])
SINK_ROWS = Counter(f"{PREFIX}_sink_rows", "Rows a sink made durable (Parquet: in a written file).",
                    ["group", "topic"])
SINK_BUFFERED_ROWS = Gauge(f"{PREFIX}_sink_buffered_rows", "Rows a sink has read but not yet made durable "
                           "(Parquet: in files still open; their offsets are not committed).", ["group", "topic"])
BRIDGE_MESSAGES = Counter(f"{PREFIX}_bridge_messages", "Queue messages a bridge finished with, by outcome: "
                          "published, ignored, or the reason it was dead-lettered.", ["bridge", "outcome"])
SINK_COMMIT_SECONDS = Histogram(f"{PREFIX}_sink_commit_seconds",
                                "Time to write one batch and its offsets durably (one checkpoint).", ["group"],
                                buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
OUTBOX_LAG = Gauge(f"{PREFIX}_outbox_lag_seconds", "Age of the oldest outbox row waiting to be published when the "
                   "relay last read (0: none waited).", ["relay"])
OUTBOX_PUBLISHED = Counter(f"{PREFIX}_outbox_rows_published", "Outbox rows the relay published and marked sent.",
                           ["relay", "product"])
OUTBOX_LAST_PUBLISHED = Gauge(f"{PREFIX}_outbox_last_published_timestamp_seconds",
                              "When the relay last marked a row of the product sent (Unix time).", ["relay", "product"])
KAFKA_UP = Gauge(f"{PREFIX}_kafka_up", "1 while a consumer reaches the leaders of the partitions it reads and its group's "
                 "coordinator, 0 while it waits for brokers (dataplatform/kafka/reachability.py).", ["component"])
OUTBOX_UP = Gauge(f"{PREFIX}_outbox_dependency_up", "1 while the relay reaches the part (database, broker), "
                  "0 during an outage of it.", ["relay", "part"])


@dataclass
class KafkaSnapshot:
    """What Kafka said at ``taken_at``: end offsets per partition and committed offsets per group."""

    end_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    committed: dict[tuple[str, str, int], int] = field(default_factory=dict)  # (group, topic, partition)
    taken_at: float = 0.0

    def lag(self) -> Iterable[tuple[str, str, int, int]]:
        for (group, topic, partition), offset in sorted(self.committed.items()):
            end = self.end_offsets.get((topic, partition))
            if end is not None:
                yield group, topic, partition, max(0, end - offset)


def take_snapshot(bootstrap: str | None, settings: Settings | None = None, timeout: float = 10.0) -> KafkaSnapshot:
    """End offsets of every topic and the committed offsets of every consumer group."""
    conf = client_config(bootstrap, settings)
    admin = AdminClient(conf)
    consumer = Consumer({**conf, "group.id": "dataplatform-metrics", "enable.auto.commit": False})
    snapshot = KafkaSnapshot(taken_at=time.time())
    try:
        topics = consumer.list_topics(timeout=timeout).topics
        for name, meta in topics.items():
            if name.startswith("__"):  # Kafka's own (offsets, transactions)
                continue
            for p in meta.partitions:
                snapshot.end_offsets[(name, p)] = consumer.get_watermark_offsets(TopicPartition(name, p), timeout=timeout)[1]
        groups = [g.group_id for g in admin.list_consumer_groups(request_timeout=timeout).result().valid]
        for gid in groups:
            try:
                result = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(gid)])[gid].result()
            except Exception as exc:  # noqa: BLE001 - a group vanishing mid-scan is not an error
                log.debug("no offsets for group %s: %s", gid, exc)
                continue
            for tp in result.topic_partitions:
                if tp.offset >= 0:
                    snapshot.committed[(gid, tp.topic, tp.partition)] = tp.offset
    finally:
        consumer.close()
    return snapshot


class KafkaSampler(BackgroundReader):
    """Keeps a fresh :class:`KafkaSnapshot` on a background thread (every ``interval_s``)."""

    thread_name = "metrics-kafka"

    def __init__(self, bootstrap: str, settings: Settings | None = None, interval_s: float = 15.0) -> None:
        super().__init__()
        self.bootstrap, self.settings, self.interval_s = bootstrap, settings, interval_s
        self.snapshot = KafkaSnapshot()
        self.started_at = time.time()

    def refresh(self) -> KafkaSnapshot:
        self.snapshot = take_snapshot(self.bootstrap, self.settings)
        return self.snapshot

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except Exception as exc:  # noqa: BLE001 - keep the last snapshot; its age says how old
                log.warning("could not read Kafka for metrics: %s", exc)
            self._stop.wait(self.interval_s)


class PlatformCollector(Collector):
    """Gauges computed at scrape time from the Kafka snapshot, the database and heartbeats."""

    def __init__(self, *, sampler: Callable[[], KafkaSampler | None], current_warnings: Callable[[], list[dict]],
                 heartbeats: Callable[[], HeartbeatBoard | None], dead_letter_suffix: str = DEAD_LETTER_SUFFIX,
                 warning_products: Callable[[], Iterable[str]] = tuple) -> None:
        """``warning_products``: every warnings product, so each has its series at 0 when quiet."""
        self.sampler, self.current_warnings, self.heartbeats = sampler, current_warnings, heartbeats
        self.warning_products = warning_products
        self.dead_letter_suffix = dead_letter_suffix

    def collect(self):
        yield from self._kafka()
        yield from self._warnings()
        yield from self._heartbeats()

    def _kafka(self):
        sampler = self.sampler()
        snap = sampler.snapshot if sampler else KafkaSnapshot()
        lag = GaugeMetricFamily(f"{PREFIX}_consumer_lag", "Events a consumer group has yet to read, per partition.",
                                labels=["group", "topic", "partition"])
        for group, topic, partition, value in snap.lag():
            lag.add_metric([group, topic, str(partition)], value)
        events = GaugeMetricFamily(f"{PREFIX}_topic_events", "End offset of each topic (events ever written), summed "
                                   "over partitions.", labels=["topic"])
        dead = GaugeMetricFamily(f"{PREFIX}_dead_letters", "Events in each dead-letter topic, by the topic they came "
                                 "from.", labels=["topic", "dead_letter_topic"])
        per_topic: dict[str, int] = {}
        for (topic, _p), end in snap.end_offsets.items():
            per_topic[topic] = per_topic.get(topic, 0) + end
        for topic, total in sorted(per_topic.items()):
            if topic.endswith(self.dead_letter_suffix):
                dead.add_metric([topic[: -len(self.dead_letter_suffix)], topic], total)
            else:
                events.add_metric([topic], total)
        age = GaugeMetricFamily(f"{PREFIX}_kafka_snapshot_age_seconds", "Age of the Kafka figures above (before "
                                "the first snapshot: time since the sampler started).")
        if sampler is not None:
            age.add_metric([], time.time() - (snap.taken_at or sampler.started_at))
        yield from (lag, events, dead, age)

    def _warnings(self):
        gauge = GaugeMetricFamily(f"{PREFIX}_warnings", "Current (not cleared) warnings by warnings product and "
                                  "severity.", labels=["product", "severity"])
        counts = {(product, severity): 0 for product in self.warning_products() for severity in ("RED", "AMBER")}
        for w in self.current_warnings():
            key = (w["product"], w["severity"])
            counts[key] = counts.get(key, 0) + 1
        for (product, severity), n in sorted(counts.items()):
            gauge.add_metric([product, severity], n)
        yield gauge

    def _heartbeats(self):
        board = self.heartbeats()
        beats = board.components() if board else []
        labels = ["component", "derived_product"]
        age = GaugeMetricFamily(f"{PREFIX}_processor_heartbeat_age_seconds", "Seconds since the processor's last "
                                "heartbeat.", labels=labels)
        evaluated = GaugeMetricFamily(f"{PREFIX}_processor_last_evaluation_timestamp_seconds",
                                      "When the processor last evaluated (Unix time).", labels=labels)
        step = GaugeMetricFamily(f"{PREFIX}_processor_step_seconds", "Duration of the processor's last step.",
                                 labels=labels)
        events_in = GaugeMetricFamily(f"{PREFIX}_processor_events_in", "Input events a processor component "
                                      "applied since it started (once per component: its derivation's inputs).",
                                      labels=["component"])
        events_out = GaugeMetricFamily(f"{PREFIX}_processor_events_out", "Events of this derived product the "
                                       "component sent since it started.", labels=labels)
        at, counted_in = epoch_ms(), set()
        for hb in beats:
            key = [hb.component, hb.derived_product]
            age.add_metric(key, hb.age_s(at))
            for family, value in ((evaluated, hb.last_evaluation_ms and hb.last_evaluation_ms / 1000),
                                  (step, hb.step_seconds), (events_out, hb.events_out)):
                if value is not None:
                    family.add_metric(key, value)
            if hb.events_in is not None and hb.component not in counted_in:   # every product's heartbeat repeats it
                counted_in.add(hb.component)
                events_in.add_metric([hb.component], hb.events_in)
        yield from (age, evaluated, step, events_in, events_out)


def exposition(app_registry: CollectorRegistry) -> bytes:
    """This process's metrics followed by the app's scrape-time ones, in Prometheus' text format."""
    return generate_latest(REGISTRY) + generate_latest(app_registry)
