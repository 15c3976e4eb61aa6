"""The Iceberg sink on a real broker and registry, with the SQL catalog on SQLite and on
PostgreSQL: both tables against a recomputation from the topic, read by pyiceberg and by
DuckDB; poison records dead-lettered once; a new schema version evolving the tables; and
kill -9 at chosen points of the commit (dataplatform/crash_points.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from pyiceberg.catalog.sql import SqlCatalog

from dataplatform.config import Settings
from dataplatform.product_io.dead_letters import ensure_dead_letter_topics
from dataplatform.sinks.iceberg.maintenance import remove_orphan_files
from dataplatform.sinks.iceberg.names import table_names
from dataplatform.sinks.iceberg.offsets import stored_offsets
from dataplatform.sinks.iceberg.sink import IcebergSink
from dataplatform.sinks.status import sink_status
from dataplatform.crash_points import PLAN_ENV
from tests.support.iceberg_tables import assert_tables_match_topic, scan_rows, topic_events
from tests.support.kafka import consume, create_topic, end_offset, unique_name
from tests.support.sending import ChangeSender
from tests.support.sinks import entity, make_product, running
from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_properties(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """A SQL catalog of its own (a unique catalog name) on SQLite or on the tests' PostgreSQL."""
    uri = (f"sqlite:///{tmp_path / 'catalog.db'}" if request.param == "sqlite"
           else request.getfixturevalue("postgres_url"))
    return {"type": "sql", "uri": uri, "warehouse": f"file://{tmp_path / 'warehouse'}", "name": unique_name("cat")}


def open_sql_catalog(props: dict[str, str]) -> SqlCatalog:
    return SqlCatalog(props["name"], **{k: v for k, v in props.items() if k not in ("name", "type")})


def ends(bootstrap: str, topic: str, partitions: int) -> dict[tuple[str, int], int]:
    return {(topic, p): end_offset(bootstrap, topic, p) for p in range(partitions)}


def test_both_tables_hold_the_topic_exactly_with_poison_dead_lettered_and_a_new_version(
        tmp_path, bootstrap, registry_url, catalog_properties):
    product = make_product(tmp_path / "products")
    evolved = make_product(tmp_path / "evolved", name=product.name, extra_field=True)
    create_topic(bootstrap, product.topic, partitions=2)
    ensure_dead_letter_topics([product.topic], bootstrap)   # as `dataplatform run` does: not auto-created mid-batch
    pub, pub2 = ChangeSender(bootstrap, registry_url, product), ChangeSender(bootstrap, registry_url, evolved)
    for i in range(12):
        pub.change("c", None, entity(i, 0))
    for i in range(0, 12, 2):
        pub.change("u", entity(i, 0), entity(i, 1))
    pub.change("d", entity(3, 0), None)
    pub.tombstone("case-5")
    pub.raw(b"case-x", b"not avro at all", partition=0)
    pub.flush()
    catalog, group = open_sql_catalog(catalog_properties), unique_name("ice")
    sink = IcebergSink(Settings(kafka_bootstrap_servers=bootstrap, schema_registry_url=registry_url),
                       products=[product], catalog=catalog, group=group, batch_timeout=0.1, commit_seconds=0.5)
    names = table_names(product)
    with running(sink):
        wait_until(lambda: sink.history and stored_offsets(sink.history[product.topic].load(), group)
                   == ends(bootstrap, product.topic, 2), timeout=90, message="first events committed")
        for i in range(12, 15):
            pub2.change("c", None, entity(i, 0, extra=True))
        pub2.flush()
        wait_until(lambda: stored_offsets(sink.current[product.topic].load(), group)
                   == ends(bootstrap, product.topic, 2), timeout=90, message="the new version committed")
    history, current = catalog.load_table(names.history_identifier), catalog.load_table(names.current_identifier)
    events = topic_events(bootstrap, registry_url, evolved, 2, skip_unreadable=True)
    assert len(events) == 12 + 6 + 1 + 1 + 3
    assert_tables_match_topic(history, current, events, group, ends(bootstrap, product.topic, 2))
    # `dataplatform sink status --iceberg`: each table's checkpoint, at the end of the topic
    status = sink_status(Settings(kafka_bootstrap_servers=bootstrap, database_url=f"sqlite:///{tmp_path / 'none.db'}"),
                         products_root=tmp_path / "products", iceberg_catalog=catalog)
    assert sorted((r.group, r.partition, r.next_offset, r.lag) for r in status) == sorted(
        (f"{group} (iceberg {'.'.join(table)})", p, end, 0)
        for table in (names.history_identifier, names.current_identifier)
        for (_, p), end in ends(bootstrap, product.topic, 2).items())
    rows = {r["_key"]: r for r in scan_rows(current)}
    assert rows["case-0"]["status"] == "closed" and rows["case-0"]["address"]["town"] == "Town 0"
    assert {k: r["priority"] for k, r in rows.items() if r["priority"] is not None} == {
        "case-12": 120, "case-13": 130, "case-14": 140}
    assert "person_ref" not in rows["case-0"] and "SECRET" not in str(scan_rows(history))
    assert [f.name for f in history.spec().fields] == ["_ts_day"]
    dead = consume(bootstrap, product.dead_letter_topic, 1)
    assert [m.value() for m in dead] == [b"not avro at all"]
    # started again, the same group reads nothing twice: no second dead letter, no new snapshot
    snapshots = len(history.snapshots())
    again = IcebergSink(Settings(kafka_bootstrap_servers=bootstrap, schema_registry_url=registry_url),
                        products=[product], catalog=catalog, group=group, batch_timeout=0.1, commit_seconds=0.5)
    assigned: list[int] = []
    stored = again.stored_offsets
    again.stored_offsets = lambda topic, partitions: assigned.extend(partitions) or stored(topic, partitions)
    with running(again):
        wait_until(lambda: sorted(assigned) == [0, 1], timeout=60, message="the second run assigned both partitions")
    assert len(catalog.load_table(names.history_identifier).snapshots()) == snapshots
    assert len(consume(bootstrap, product.dead_letter_topic, 1, timeout=5)) == 1


POINTS = ("iceberg.history-files-written", "iceberg.history-committed", "iceberg.current-files-written",
          "iceberg.committed")


def test_kill_9_at_every_point_of_the_commit_loses_and_duplicates_nothing(tmp_path, bootstrap, registry_url):
    """20 kills: files written not committed, between the two tables, after both; with
    updates, deletes and tombstones of the same keys in the input."""
    product = make_product(tmp_path / "products")
    create_topic(bootstrap, product.topic, partitions=2)
    pub = ChangeSender(bootstrap, registry_url, product)
    plans = tmp_path / "plans"
    plans.mkdir()
    for n in range(20):
        (plans / f"{n:03d}.plan").write_text(f"{POINTS[n % 4]} {1 + (n // 4) % 2}\n")
    cat = "crash" + unique_name("c").replace("-", "")
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "SCHEMA_REGISTRY_URL": registry_url,
           "DATAPLATFORM_HOME": str(tmp_path / "home"), PLAN_ENV: str(plans), "ICEBERG_CATALOG": cat,
           f"PYICEBERG_CATALOG__{cat.upper()}__TYPE": "sql",
           f"PYICEBERG_CATALOG__{cat.upper()}__URI": f"sqlite:///{tmp_path / 'catalog.db'}",
           f"PYICEBERG_CATALOG__{cat.upper()}__WAREHOUSE": f"file://{tmp_path / 'warehouse'}"}
    group = unique_name("ice-crash")
    args = [sys.executable, "-m", "dataplatform.cli", "sink", "iceberg", "--topic", product.topic,
            "--products-root", str(tmp_path / "products"), "--group", group, "--instance-id", group,
            "--batch-size", "50", "--batch-timeout", "0.05", "--commit-seconds", "0.2"]
    stop_producing = threading.Event()

    def produce() -> None:   # a steady stream: creates, then updates, deletes and tombstones of the same keys
        n = 0
        while not stop_producing.is_set():
            i, step = n % 40, n // 40
            version = 1 + step % 50   # amounts keep two decimals
            if step % 3 == 2 and i % 4 == 0:
                pub.change("d", entity(i, version), None)
            elif step % 3 == 2 and i % 4 == 1:
                pub.tombstone(f"case-{i}")
            elif step == 0:
                pub.change("c", None, entity(i, version))
            else:
                pub.change("u", entity(i, version - 1), entity(i, version))
            n += 1
            if n % 4 == 0:
                pub.flush()
                stop_producing.wait(0.1)   # pacing the producer (about 40 events/s), not synchronising
    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    log = open(tmp_path / "sink.log", "wb")
    try:
        for kill in range(20):
            proc = subprocess.Popen(args, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
            try:
                proc.wait(90)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise AssertionError(f"kill {kill}: the sink never reached its crash point") from None
            assert proc.returncode == -signal.SIGKILL, (tmp_path / "sink.log").read_text()[-3000:]
        assert sorted(p.suffix for p in plans.iterdir()) == [".done"] * 20
    finally:
        stop_producing.set()
        producer.join(30)
        pub.flush()
    proc = subprocess.Popen(args, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    catalog = SqlCatalog(cat, uri=f"sqlite:///{tmp_path / 'catalog.db'}", warehouse=f"file://{tmp_path / 'warehouse'}")
    names = table_names(product)
    target = ends(bootstrap, product.topic, 2)
    try:
        wait_until(lambda: catalog.table_exists(names.current_identifier) and stored_offsets(
            catalog.load_table(names.current_identifier), group) == target, timeout=120,
            message="the last sink caught up")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        log.close()
    events = topic_events(bootstrap, registry_url, product, 2)
    assert {e["op"] for e in events} >= {"c", "u", "d", "t"} and len(events) == sum(target.values())
    history, current = catalog.load_table(names.history_identifier), catalog.load_table(names.current_identifier)
    assert_tables_match_topic(history, current, events, group, target)
    # the kills with files written but not committed left files no snapshot refers to; orphan
    # removal (the sink is stopped: no age needed) deletes them and nothing the tables use
    removed = remove_orphan_files(history, timedelta(0)) + remove_orphan_files(current, timedelta(0))
    assert any("/data/" in path for path in removed), removed
    assert_tables_match_topic(catalog.load_table(names.history_identifier),
                              catalog.load_table(names.current_identifier), events, group, target)
