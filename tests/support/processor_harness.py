"""The supply/demand processor under test: its configuration for one test, reading its outputs,
knowing when it has caught up (from its committed offsets), and recomputing supply and demand
from the raw events independently of the processor's code."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from pathlib import Path

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient

from dataplatform.heartbeat import HEARTBEAT_TOPIC, Heartbeat
from dataplatform.kafka_config import client_config
from dataplatform.product_io.names import dead_letter_topic
from dataplatform.products.envelope import ChangeEvent
from dataplatform.products.product import get_product
from dataplatform.stream_processors.config import ProcessorConfig
from tests.support.entities import HOUSING
from tests.support.in_memory import housing_rule
from tests.support.kafka import unique_name
from tests.support.product_topics import TopicReader

TODAY = dt.datetime.now(dt.timezone.utc).date()

TEST_RULES = """
horizon_days: 28
rules:
  - id: shortfall
    applies_to: [local_authority, region]
    have: supply
    need: demand
    need_unit: people
    min_need: 1
    red_below: 1.0
    amber_below: 1.2
    clear_margin: 0.1
    clear_after: 1
"""


def harness_rule():
    """The rule TEST_RULES declares (the housing rule, judged from 1, clearing after one evaluation)."""
    return housing_rule(min_need=1, clear_after=1)


def processor_config(bootstrap: str, registry_url: str, tmp_path: Path, name: str, **kw: object) -> ProcessorConfig:
    rules = tmp_path / "rules.yaml"
    rules.write_text(TEST_RULES)
    prefix = unique_name(name) + "."
    kw.setdefault("rules_path", str(rules))
    return ProcessorConfig(app_id=f"{prefix}processor", bootstrap=bootstrap, registry_url=registry_url,
                           topic_prefix=prefix, datadir=str(tmp_path / prefix), loglevel="INFO", **kw)


class OutputReader:
    """Reads the processor's warnings, derived figures and dead letters as they arrive."""

    def __init__(self, bootstrap: str, registry_url: str, config: ProcessorConfig) -> None:
        self.warning_topic = config.topic("housing_shortfall_warnings")
        self.derived_topic = config.topic("area_supply_demand")
        self.dlq_topic = dead_letter_topic(config.topic(HOUSING))
        self.reader = TopicReader(bootstrap, registry_url, {
            self.warning_topic: get_product("housing_shortfall_warnings"),
            self.derived_topic: get_product("area_supply_demand"), self.dlq_topic: None})
        self.warnings: list[dict] = []       # change events (envelopes) in arrival order
        self.derived: list[dict] = []
        self.dead_letters: list = []

    def drain(self) -> "OutputReader":
        for record in self.reader.drain():
            if record.topic == self.dlq_topic:
                self.dead_letters.append(record.message)
            else:
                (self.warnings if record.topic == self.warning_topic else self.derived).append(record.value)
        return self

    def transitions(self, area: str | None = None) -> list[tuple[str, str, str]]:
        return [(w["after"]["area_code"], w["after"]["severity"], w["after"]["transition"])
                for w in self.warnings if area is None or w["after"]["area_code"] == area]

    def latest_figures(self) -> dict[str, tuple[int, int]]:
        latest = {}
        for event in self.derived:
            latest[event["after"]["area_code"]] = (event["after"]["supply"], event["after"]["demand"])
        return latest

    def close(self) -> None:
        self.reader.close()


def committed_offsets(bootstrap: str, config: ProcessorConfig) -> dict[tuple[str, int], int]:
    """The processor group's committed offset of each partition."""
    admin = AdminClient(client_config(bootstrap))
    request = ConsumerGroupTopicPartitions(config.app_id)
    return {(tp.topic, tp.partition): tp.offset for tp in
            admin.list_consumer_group_offsets([request])[config.app_id].result(30).topic_partitions}


def caught_up(bootstrap: str, config: ProcessorConfig) -> bool:
    """True when the processor's group has committed every input and repartition message."""
    topics = [*(config.topic(p) for p in config.inputs), config.contributions_topic]
    committed = committed_offsets(bootstrap, config)
    probe = Consumer({**client_config(bootstrap), "group.id": unique_name("probe")})
    try:
        for topic in topics:
            for p in range(config.partitions):
                _, high = probe.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                if high > 0 and committed.get((topic, p), -1) < high:
                    return False
    finally:
        probe.close()
    return True


def expected_figures(sent: list[tuple[str, ChangeEvent]], horizon: int = 28) -> dict[str, tuple[int, int]]:
    """Supply and demand per area recomputed straight from the raw events (no processor code)."""
    latest: dict[tuple[str, str], ChangeEvent] = {}
    for product, event in sent:
        key = (product, event.entity["unit_id" if product == HOUSING else "case_id"])
        if key not in latest or event.position > latest[key].position:
            latest[key] = event
    last_day = TODAY + dt.timedelta(days=horizon)
    figures: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (product, _), event in latest.items():
        e = event.entity
        for area in (e["local_authority_code"], e["region_code"]):
            figures[area]  # an area that ever had an entity is reported, even at 0/0
        if event.op == "d":
            continue
        if product == HOUSING:
            counted, side = e["status"] == "available" and e["available_from"] <= last_day, 0
        else:
            counted = (e["status"] == "scheduled" and e["expected_release_date"] <= last_day) or e["status"] == "released"
            side = 1
        if counted:
            for area in (e["local_authority_code"], e["region_code"]):
                figures[area][side] += 1
    return {a: (s, d) for a, (s, d) in figures.items()}


def latest_heartbeats(bootstrap: str, app_id: str) -> dict[str, Heartbeat]:
    """The newest heartbeat of each derived product from the workers of ``app_id``."""
    consumer = Consumer({**client_config(bootstrap), "group.id": unique_name("beats"),
                         "auto.offset.reset": "earliest", "enable.partition.eof": True})
    consumer.subscribe([HEARTBEAT_TOPIC])
    latest: dict[str, Heartbeat] = {}
    try:
        while True:
            msg = consumer.poll(5)
            if msg is None or (msg.error() and msg.error().code() == KafkaError._PARTITION_EOF):
                return latest
            if not msg.error() and msg.key().decode().startswith(app_id):
                beat = Heartbeat.from_json(msg.value())
                latest[beat.derived_product] = beat
    finally:
        consumer.close()
