"""The embedded Apache Kafka broker behaves like Kafka: acknowledged messages are kept,
exactly once and in order per partition, across a restart and the loss of a node."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import defaultdict
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from dataplatform.config import Settings

from dataplatform.kafka import EmbeddedKafka, EmbeddedKafkaCluster
from dataplatform.kafka.process import pid_alive
from dataplatform.kafka_config import client_config
from dataplatform.products.product import get_product
from dataplatform.topics import Replication, TopicSpec, check_replication, create_missing, replication
from tests.support.kafka import consume, create_topic, unique_name

RELIABLE = {"acks": "all", "enable.idempotence": True, "linger.ms": 5}


def produce_keyed(bootstrap: str, topic: str, count: int, keys: int = 50) -> list[tuple[bytes, bytes]]:
    """Produce ``count`` messages over ``keys`` keys; return those the broker acknowledged."""
    acked: list[tuple[bytes, bytes]] = []
    errors: list[str] = []

    def on_delivery(err, msg):
        if err:
            errors.append(str(err))
        else:
            acked.append((msg.key(), msg.value()))

    producer = Producer({**client_config(bootstrap), **RELIABLE})
    for i in range(count):
        key = f"key-{i % keys}".encode()
        producer.produce(topic, key=key, value=f"{key.decode()}:{i}".encode(), on_delivery=on_delivery)
        producer.poll(0)
    assert producer.flush(60) == 0, "messages still in flight after 60s"
    assert not errors, errors[:5]
    return acked


def assert_exactly_once_in_order(messages, expected_count: int) -> None:
    values = [m.value() for m in messages]
    assert len(values) == expected_count
    assert len(set(values)) == expected_count, "a message was delivered twice"
    by_key: dict[bytes, list[int]] = defaultdict(list)
    for m in sorted(messages, key=lambda m: (m.partition(), m.offset())):
        by_key[m.key()].append(int(m.value().split(b":")[1]))
    for key, seq in by_key.items():
        assert seq == sorted(seq), f"messages of {key!r} arrived out of order"


def test_ten_thousand_keyed_messages_arrive_exactly_once_in_order(bootstrap: str) -> None:
    topic = create_topic(bootstrap, unique_name("keyed"), partitions=3)
    acked = produce_keyed(bootstrap, topic, 10_000)
    assert len(acked) == 10_000
    messages = consume(bootstrap, topic, 10_000)
    assert_exactly_once_in_order(messages, 10_000)
    assert {m.partition() for m in messages} == {0, 1, 2}


def test_restarted_broker_keeps_topics_and_messages(tmp_path: Path) -> None:
    broker = EmbeddedKafka(tmp_path / "kafka")
    bootstrap = broker.start()
    try:
        topic = create_topic(bootstrap, unique_name("restart"), partitions=2)
        produce_keyed(bootstrap, topic, 2_000)
        assert broker.stop()
        assert broker.running_pid() is None
        assert broker.start() == bootstrap  # same port, same data
        assert_exactly_once_in_order(consume(bootstrap, topic, 2_000), 2_000)
    finally:
        broker.stop()


def test_cli_start_status_stop_leaves_no_java_process(tmp_path: Path) -> None:
    data_dir = tmp_path / "cli-kafka"
    cli = [sys.executable, "-m", "dataplatform.cli.__main__"]
    started = subprocess.run([*cli, "kafka", "start", "--data-dir", str(data_dir)],
                             capture_output=True, text=True, timeout=180)
    assert started.returncode == 0, started.stderr
    bootstrap = started.stdout.strip().splitlines()[-1]
    assert bootstrap.startswith("127.0.0.1:")
    pid = int((data_dir / "broker.pid").read_text())
    try:
        status = subprocess.run([*cli, "kafka", "status", "--data-dir", str(data_dir), "--json"],
                                capture_output=True, text=True, timeout=60)
        assert status.returncode == 0 and '"running": true' in status.stdout
        topic = create_topic(bootstrap, unique_name("cli"))
        produce_keyed(bootstrap, topic, 100)
        assert len(consume(bootstrap, topic, 100)) == 100
    finally:
        stopped = subprocess.run([*cli, "kafka", "stop", "--data-dir", str(data_dir)],
                                 capture_output=True, text=True, timeout=120)
    assert stopped.returncode == 0, stopped.stderr
    assert not pid_alive(pid), "the Java process outlived `dataplatform kafka stop`"
    status = subprocess.run([*cli, "kafka", "status", "--data-dir", str(data_dir)],
                            capture_output=True, text=True, timeout=60)
    assert status.returncode == 1 and "stopped" in status.stdout


def check_platform_replication(bootstrap: str) -> None:
    """On three brokers the platform creates topics with 3 replicas and min.insync.replicas 2,
    and `dataplatform topics check` reports a product topic someone created with one replica."""
    admin = AdminClient(client_config(bootstrap))
    assert replication(admin, Settings()) == Replication(factor=3, min_insync=2)
    made = unique_name("policy")
    assert create_missing(admin, [TopicSpec(made, 2)], Settings()) == [made]
    [found] = check_replication(admin, [made], Settings())
    assert (found.factor, found.min_insync, found.problems) == (3, 2, [])
    product = get_product("social_housing_availability")
    create_topic(bootstrap, product.topic, partitions=1, replication=1)
    checked = subprocess.run([sys.executable, "-m", "dataplatform.cli", "topics", "check", "--json"],
                             env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap},
                             capture_output=True, text=True, timeout=120)
    assert checked.returncode == 1, checked.stderr
    report = {t["topic"]: t for t in json.loads(checked.stdout)}
    assert report[product.topic]["problems"][0] == "replication factor 1 < 3"


def test_three_node_cluster_keeps_acknowledged_messages_when_a_node_is_killed(tmp_path: Path) -> None:
    cluster = EmbeddedKafkaCluster(tmp_path / "cluster")
    bootstrap = cluster.start()
    try:
        check_platform_replication(bootstrap)
        topic = create_topic(bootstrap, unique_name("ha"), partitions=3, replication=3,
                             config={"min.insync.replicas": "2"})
        acked: list[bytes] = []
        failed: list[str] = []
        producer = Producer({**client_config(bootstrap), **RELIABLE,
                             "delivery.timeout.ms": 60000, "retries": 1000})

        def on_delivery(err, msg):
            (failed.append(str(err)) if err else acked.append(msg.value()))

        killed = threading.Event()
        for i in range(6_000):
            producer.produce(topic, key=f"k{i % 30}".encode(), value=f"v:{i}".encode(), on_delivery=on_delivery)
            producer.poll(0)
            if i == 2_000:
                producer.flush(30)
                cluster.nodes[1].kill()  # kill -9 mid-stream
                killed.set()
        assert producer.flush(120) == 0
        assert killed.is_set()
        assert len(acked) > 2_000, "the producer made no progress after the node was killed"
        readable = {m.value() for m in consume(bootstrap, topic, len(acked), timeout=120)}
        lost = set(acked) - readable
        assert not lost, f"{len(lost)} acknowledged messages are not readable, e.g. {sorted(lost)[:5]}"
    finally:
        cluster.stop()
