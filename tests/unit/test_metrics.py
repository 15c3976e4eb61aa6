"""The scrape-time metrics, from a Kafka snapshot, the current warnings and heartbeats."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from dataplatform.heartbeat import Heartbeat, HeartbeatBoard
from dataplatform.web.scrape_metrics import KafkaSnapshot, PlatformCollector


class FixedSampler:
    def __init__(self, snapshot: KafkaSnapshot) -> None:
        self.snapshot = snapshot


def samples(registry: CollectorRegistry) -> dict:
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def test_lag_per_group_and_partition_events_and_dead_letters_per_topic_warnings_and_heartbeats():
    snap = KafkaSnapshot(end_offsets={("t", 0): 10, ("t", 1): 5, ("t.dlq", 0): 2},
                         committed={("g", "t", 0): 7, ("g", "t", 1): 5, ("gone", "x", 0): 3}, taken_at=time.time())
    board = HeartbeatBoard("unused:9092")
    board.record(Heartbeat("p0", "area_supply_demand", 1_000, None, ts_ms=int(time.time() * 1000), step_seconds=0.5))
    registry = CollectorRegistry()
    registry.register(PlatformCollector(sampler=lambda: FixedSampler(snap), heartbeats=lambda: board,
                                        current_warnings=lambda: [{"product": "housing", "severity": "RED"},
                                                                  {"product": "housing", "severity": "RED"},
                                                                  {"product": "courts", "severity": "AMBER"}],
                                        warning_products=lambda: ["housing", "courts"]))
    m = samples(registry)
    assert m[("dataplatform_consumer_lag", (("group", "g"), ("partition", "0"), ("topic", "t")))] == 3
    assert m[("dataplatform_consumer_lag", (("group", "g"), ("partition", "1"), ("topic", "t")))] == 0
    assert not any(k[0] == "dataplatform_consumer_lag" and ("group", "gone") in k[1] for k in m)  # topic gone
    assert m[("dataplatform_topic_events", (("topic", "t"),))] == 15
    assert m[("dataplatform_dead_letters", (("dead_letter_topic", "t.dlq"), ("topic", "t")))] == 2
    assert m[("dataplatform_warnings", (("product", "housing"), ("severity", "RED")))] == 2
    assert m[("dataplatform_warnings", (("product", "housing"), ("severity", "AMBER")))] == 0
    assert m[("dataplatform_warnings", (("product", "courts"), ("severity", "AMBER")))] == 1   # not housing's
    assert m[("dataplatform_warnings", (("product", "courts"), ("severity", "RED")))] == 0
    hb = (("component", "p0"), ("derived_product", "area_supply_demand"))
    assert m[("dataplatform_processor_step_seconds", hb)] == 0.5
    assert m[("dataplatform_processor_last_evaluation_timestamp_seconds", hb)] == 1.0
    assert ("dataplatform_processor_events_in", hb) not in m       # not reported: not invented


class StartedSampler(FixedSampler):
    def __init__(self, started_at: float) -> None:
        super().__init__(KafkaSnapshot())
        self.started_at = started_at


def test_no_kafka_yet_means_a_snapshot_as_old_as_the_sampler_never_infinite_nor_zero_lag():
    registry = CollectorRegistry()
    registry.register(PlatformCollector(sampler=lambda: StartedSampler(time.time() - 40), heartbeats=lambda: None,
                                        current_warnings=list))
    m = samples(registry)
    assert 40 <= m[("dataplatform_kafka_snapshot_age_seconds", ())] < 60
    assert not any(k[0] == "dataplatform_consumer_lag" for k in m)
    registry = CollectorRegistry()
    registry.register(PlatformCollector(sampler=lambda: None, heartbeats=lambda: None, current_warnings=list))
    assert not any(k[0] == "dataplatform_kafka_snapshot_age_seconds" for k in samples(registry))   # not sampling


def test_events_in_are_counted_once_per_component_and_out_per_derived_product():
    board = HeartbeatBoard("unused:9092")
    now = int(time.time() * 1000)
    for product, out in (("area_supply_demand", 40), ("housing_shortfall_warnings", 3)):
        board.record(Heartbeat("p0", product, now, now, ts_ms=now, events_in=100, events_out=out))
    registry = CollectorRegistry()
    registry.register(PlatformCollector(sampler=lambda: None, heartbeats=lambda: board, current_warnings=list))
    m = samples(registry)
    assert sum(v for k, v in m.items() if k[0] == "dataplatform_processor_events_in") == 100
    assert m[("dataplatform_processor_events_in", (("component", "p0"),))] == 100
    assert m[("dataplatform_processor_events_out", (("component", "p0"), ("derived_product", "area_supply_demand")))] == 40
    assert m[("dataplatform_processor_events_out",
              (("component", "p0"), ("derived_product", "housing_shortfall_warnings")))] == 3
