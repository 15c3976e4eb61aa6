"""The Iceberg sink on Apache Iceberg's REST catalog server with its warehouse on an S3
store (both from Maven jars), from a real broker and registry: both tables against a
recomputation from the topic, read back by pyiceberg and by DuckDB over the S3 files; and
a 20 s outage of the catalog, then of the object store, mid-stream: the sink backs off,
says so in its log and in the group's committed offsets (what lag tools show), and loses
and duplicates nothing."""

from __future__ import annotations

import logging
import time

import pytest
from confluent_kafka import Consumer, TopicPartition
from pyiceberg.catalog import load_catalog

from dataplatform.config import Settings
from dataplatform.kafka_config import client_config
from dataplatform.sinks.iceberg.names import table_names
from dataplatform.sinks.iceberg.offsets import stored_offsets
from dataplatform.sinks.iceberg.sink import IcebergSink
from tests.support.iceberg_tables import assert_readers_agree, assert_tables_match_topic, topic_events
from tests.support.kafka import create_topic, end_offset, unique_name
from tests.support.lakehouse import LakehouseServers, read_with_duckdb
from tests.support.sending import ChangeSender
from tests.support.sinks import entity, make_product, running
from tests.support.waiting import wait_until

PARTITIONS = 2
OUTAGE_S = 20.0


class Delivery:
    """One product's topic and a sink group writing it to the session's REST catalog."""

    def __init__(self, tmp_path, bootstrap: str, registry_url: str, servers: LakehouseServers,
                 monkeypatch: pytest.MonkeyPatch) -> None:
        self.bootstrap, self.registry_url = bootstrap, registry_url
        self.product = make_product(tmp_path / "products")
        create_topic(bootstrap, self.product.topic, partitions=PARTITIONS)
        self.sender = ChangeSender(bootstrap, registry_url, self.product)
        self.group = unique_name("iceberg-rest")
        self.catalog = load_catalog("reader", **servers.properties)
        self.names = table_names(self.product)
        # the sink's catalog configured as in production: pyiceberg's own PYICEBERG_CATALOG__<NAME>__… variables
        for key, value in servers.properties.items():
            monkeypatch.setenv(f"PYICEBERG_CATALOG__SINK__{key.replace('.', '__').replace('-', '_').upper()}", value)
        self.sink = IcebergSink(Settings(kafka_bootstrap_servers=bootstrap, schema_registry_url=registry_url,
                                         iceberg_catalog="sink", iceberg_request_timeout_seconds=5),
                                products=[self.product], group=self.group, batch_timeout=0.1, commit_seconds=0.5,
                                maintenance_seconds=0)

    def ends(self) -> dict[tuple[str, int], int]:
        return {(self.product.topic, p): end_offset(self.bootstrap, self.product.topic, p) for p in range(PARTITIONS)}

    def tables(self):  # noqa: ANN201 - (history, current) pyiceberg tables
        return (self.catalog.load_table(self.names.history_identifier),
                self.catalog.load_table(self.names.current_identifier))

    def caught_up(self) -> bool:
        """Both tables' offsets at the topic's end (False while a server is away)."""
        try:
            history, current = self.tables()
        except Exception:  # noqa: BLE001 - not created yet, or a server restarting
            return False
        ends = {tp: o for tp, o in self.ends().items() if o}
        return stored_offsets(history, self.group) == ends == stored_offsets(current, self.group)

    def kafka_committed(self) -> dict[tuple[str, int], int]:
        """The group's committed offsets: what lag tools and `kafka-consumer-groups` show."""
        consumer = Consumer({**client_config(self.bootstrap), "group.id": self.group})
        try:
            parts = consumer.committed([TopicPartition(self.product.topic, p) for p in range(PARTITIONS)], timeout=10)
            return {(tp.topic, tp.partition): max(tp.offset, 0) for tp in parts}
        finally:
            consumer.close()

    def assert_tables_right(self) -> None:
        """0 missing, 0 duplicate, 0 wrong rows against the topic; pyiceberg and DuckDB agree."""
        history, current = self.tables()
        events = topic_events(self.bootstrap, self.registry_url, self.product, PARTITIONS)
        assert_tables_match_topic(history, current, events, self.group, self.ends())
        assert_readers_agree(current)
        whole = current.scan().to_arrow().sort_by("_key").to_pylist()
        assert whole == read_with_duckdb(current, "SELECT * FROM t ORDER BY _key").to_pylist()


def send_round(sender: ChangeSender, first: int, count: int) -> None:
    """``count`` new cases from ``first``: every third updated, the last two deleted (a
    change event, then a tombstone)."""
    for i in range(first, first + count):
        sender.change("c", None, entity(i, 0))
    for i in range(first, first + count, 3):
        sender.change("u", entity(i, 0), entity(i, 1))
    for i in range(first + count - 2, first + count):
        sender.change("d", entity(i, 0), None)
        sender.tombstone(f"case-{i}")
    sender.flush()


def test_the_sink_delivers_the_topic_to_tables_in_the_rest_catalog_on_s3(tmp_path, bootstrap, registry_url,
                                                                          lakehouse, monkeypatch):
    d = Delivery(tmp_path, bootstrap, registry_url, lakehouse, monkeypatch)
    send_round(d.sender, 0, 30)
    with running(d.sink):
        wait_until(d.caught_up, timeout=90, message="both tables at the topic's end offsets")
    d.assert_tables_right()
    history, current = d.tables()
    files = [t.file.file_path for table in (history, current) for t in table.scan().plan_files()]
    assert current.metadata.location.startswith("s3://warehouse/")
    assert files and all(f.startswith("s3://warehouse/") for f in files)


@pytest.mark.parametrize("down", ["catalog_server", "store"])
def test_an_outage_mid_stream_is_waited_out_and_loses_nothing(tmp_path, bootstrap, registry_url, iceberg_rest,
                                                               down, caplog, monkeypatch):
    servers = iceberg_rest.servers
    d = Delivery(tmp_path, bootstrap, registry_url, servers, monkeypatch)
    send_round(d.sender, 0, 12)
    caplog.set_level(logging.WARNING, logger="dataplatform.sinks")

    def backing_off() -> list[str]:
        return [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]

    with running(d.sink):
        wait_until(d.caught_up, timeout=90, message="the first round in both tables")
        before = d.kafka_committed()
        server = getattr(servers, down)
        server.stop()
        try:
            began = time.monotonic()
            send_round(d.sender, 100, 12)
            wait_until(backing_off, timeout=OUTAGE_S, message=f"the sink to say it backs off while the {down} is down")
            # the outage lasts its 20 s, the sink saying so again and again, and holding its offsets
            wait_until(lambda: time.monotonic() - began >= OUTAGE_S and len(backing_off()) >= 3,
                       timeout=OUTAGE_S + 30, message=f"{OUTAGE_S:.0f} s of outage with the sink backing off")
            assert d.kafka_committed() == before != d.ends(), "the group's offsets moved while nothing was committed"
        finally:
            server.start()  # also when the test fails, so that the sink can stop
        wait_until(d.caught_up, timeout=120, message=f"the sink to catch up once the {down} is back")
        wait_until(lambda: d.kafka_committed() == d.ends(), timeout=30, message="the group's offsets to catch up")
    d.assert_tables_right()
