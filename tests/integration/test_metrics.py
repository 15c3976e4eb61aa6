"""``/metrics`` on a real broker: consumer lag per group and partition, events and dead
letters per topic, warnings by severity, sink rows and commit time, processor step time."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
from confluent_kafka import Consumer, Producer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from dataplatform.config import Settings
from dataplatform.heartbeat import Heartbeat, publish_heartbeat
from dataplatform.kafka_config import client_config
from dataplatform.web.app import create_app, start_warning_follower
from dataplatform.web.server import RunningServer
from dataplatform.sinks.sql.writer import SqlSink
from tests.support.kafka import create_topic, unique_name
from tests.support.sending import ChangeSender
from tests.support.sinks import entity, make_product
from tests.support.waiting import wait_until
from tests.support.warnings import WarningSender, warning


def scrape(url: str) -> dict[tuple[str, frozenset], float]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(metrics: dict, name: str, **labels: str) -> float | None:
    return metrics.get((name, frozenset(labels.items())))


def test_metrics_report_lag_events_dead_letters_warnings_sinks_and_processor(tmp_path: Path, bootstrap: str,
                                                                            registry_url: str):
    product = make_product(tmp_path / "products")
    create_topic(bootstrap, product.topic, partitions=2)
    pub = ChangeSender(bootstrap, registry_url, product)
    for i in range(4):
        pub.change("c", None, entity(i), partition=0)
    for i in range(4, 6):
        pub.change("c", None, entity(i), partition=1)
    pub.raw(b"case-x", b"not avro", partition=1)          # a dead letter
    pub.flush()
    slow_group = unique_name("slow-reader")               # a group that has read 1 event of partition 0
    slow = Consumer({**client_config(bootstrap), "group.id": slow_group, "enable.auto.commit": False})
    slow.commit(offsets=[TopicPartition(product.topic, 0, 1)], asynchronous=False)
    slow.close()

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'web.db'}", kafka_bootstrap_servers=bootstrap,
                        schema_registry_url=registry_url)
    sink_group = unique_name("sql-metrics")
    sink = SqlSink(settings, products=[product], database_url=f"sqlite:///{tmp_path / 'sink.db'}", group=sink_group,
                   batch_timeout=0.2)
    stop = threading.Event()
    sink_thread = threading.Thread(target=sink.run, args=(stop,), daemon=True)
    sink_thread.start()
    warnings_topic = create_topic(bootstrap, unique_name("warnings"))
    heartbeat_topic = unique_name("heartbeats")
    app = create_app(settings)
    try:
        with RunningServer(app) as server:
            start_warning_follower(app, bootstrap=bootstrap, registry_url=registry_url, topic=warnings_topic,
                                   figures_topic=create_topic(bootstrap, unique_name("figures")),
                                   heartbeat_topic=heartbeat_topic, metrics_interval_s=1.0)
            warnings = WarningSender(bootstrap, registry_url, warnings_topic)
            warnings.send(warning("E08000003", "Manchester", "RED"))
            warnings.send(warning("E08000012", "Liverpool", "RED"))
            warnings.send(warning("E08000035", "Leeds", "AMBER", demand=10, supply=11))
            producer = Producer(client_config(bootstrap))
            publish_heartbeat(producer, Heartbeat("processor-0", "area_supply_demand", last_evaluation_ms=int(time.time() * 1000),
                                                  last_input_event_ms=None, step_seconds=0.25, events_in=6, events_out=2),
                              heartbeat_topic)
            producer.flush(10)

            def complete():
                m = scrape(server.url)
                wanted = {
                    "slow lag p0": value(m, "dataplatform_consumer_lag", group=slow_group, topic=product.topic, partition="0") == 3,
                    "sink lag p0": value(m, "dataplatform_consumer_lag", group=sink_group, topic=product.topic, partition="0") == 0,
                    "sink lag p1": value(m, "dataplatform_consumer_lag", group=sink_group, topic=product.topic, partition="1") == 0,
                    "events": value(m, "dataplatform_topic_events", topic=product.topic) == 7,
                    "dead letters": value(m, "dataplatform_dead_letters", topic=product.topic,
                                          dead_letter_topic=product.dead_letter_topic) == 1,
                    "red": value(m, "dataplatform_warnings", product="housing_shortfall_warnings", severity="RED") == 2,
                    "amber": value(m, "dataplatform_warnings", product="housing_shortfall_warnings", severity="AMBER") == 1,
                    "sink rows": value(m, "dataplatform_sink_rows_total", group=sink_group, topic=product.topic) == 6,
                    "commits": (value(m, "dataplatform_sink_commit_seconds_count", group=sink_group) or 0) >= 1,
                    "step": value(m, "dataplatform_processor_step_seconds", component="processor-0",
                                  derived_product="area_supply_demand") == 0.25,
                    "events in": value(m, "dataplatform_processor_events_in", component="processor-0") == 6,
                    "transitions": (value(m, "dataplatform_warning_transitions_total", severity="RED",
                                          transition="raised") or 0) >= 2,
                }
                still_wrong[:] = [k for k, ok in wanted.items() if not ok]
                return not still_wrong

            still_wrong: list[str] = []
            try:
                wait_until(complete, timeout=90, interval=0.5, message="every metric at its expected value")
            except AssertionError as exc:
                raise AssertionError(f"{exc}; still wrong: {', '.join(still_wrong)}") from None
            m = scrape(server.url)
            assert value(m, "dataplatform_consumer_lag", group=slow_group, topic=product.topic, partition="1") is None
            assert value(m, "dataplatform_kafka_snapshot_age_seconds") < 30
            assert value(m, "dataplatform_processor_heartbeat_age_seconds", component="processor-0",
                         derived_product="area_supply_demand") < 60
    finally:
        stop.set()
        sink_thread.join(60)
