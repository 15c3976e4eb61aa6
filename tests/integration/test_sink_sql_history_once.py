"""The SQL sink's history table (append mode) holds each event once: an event sent again
after its producer crashed, a table from before the event-id index that holds re-sent
events twice (refused, with the statement that removes them), and append sinks killed at
chosen points of their write path while earlier events are re-sent."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

from confluent_kafka import Producer
from sqlalchemy import create_engine, insert, inspect, text

from dataplatform.kafka_config import client_config
from dataplatform.sinks.sql.bulk import insert_rows
from dataplatform.sinks.sql.history_index import event_index_name
from dataplatform.sinks.sql.tables import TableManager, table_name
from dataplatform.sinks.sql.writer import SqlSink
from tests.support.kafka import consume, end_offset, unique_name
from tests.support.sending import ChangeSender
from tests.support.sinks import entity, make_product, running
from tests.support.sql_sink import new_topic_product, offsets_of, product_with_cases, rows_of, settings
from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]


def test_an_event_sent_again_after_its_producer_crashed_is_written_once(tmp_path, bootstrap, registry_url, db_url):
    product, pub = product_with_cases(tmp_path, bootstrap, registry_url)
    pub.flush()
    again = Producer(client_config(bootstrap))
    for m in consume(bootstrap, product.topic, expected=3)[:2]:   # re-sent byte for byte, at new offsets
        again.produce(product.topic, key=m.key(), value=m.value())
    assert again.flush(30) == 0
    group, name = unique_name("sql-repeat"), table_name(product.topic, "append")
    with running(SqlSink(settings(bootstrap, registry_url), products=[product], database_url=db_url, mode="append",
                         group=group, batch_size=10, batch_timeout=0.2)):
        wait_until(lambda: sum(o["next_offset"] for o in offsets_of(db_url, group)) == 5, timeout=60,
                   message="all 5 messages read")
    rows = rows_of(db_url, name)
    assert sorted(r["case_id"] for r in rows) == ["case-0", "case-1", "case-2"]   # each event once


def test_a_history_table_with_duplicates_is_refused_with_the_statement_that_removes_them(tmp_path, registry_url, db_url):
    """A table from before the event-id index, holding re-sent events twice: the sink says
    what and how to fix it, deletes nothing; after the printed statement it adds the index."""
    product = make_product(tmp_path / "products")
    name, engine = table_name(product.topic, "append"), create_engine(db_url)
    old = TableManager(engine).ensure(name, "append", [])
    row = {"_key": "k", "_op": "c", "_deleted": False}
    copies = [("e1", 0, 0), ("e2", 0, 1), ("e1", 0, 3), ("e2", 1, 0), ("e2", 1, 4), (None, 0, 5), (None, 0, 6)]
    with engine.begin() as conn:
        conn.execute(text(f'DROP INDEX "{event_index_name(name)}"'))
        conn.execute(insert(old), [{**row, "_event_id": e, "_kafka_partition": p, "_kafka_offset": o} for e, p, o in copies])
    out = subprocess.run([sys.executable, "-m", "dataplatform.cli", "sink", "sql", "--topic", product.topic,
                          "--products-root", str(tmp_path / "products"), "--database-url", db_url, "--mode", "append"],
                         env={**os.environ, "SCHEMA_REGISTRY_URL": registry_url, "DATAPLATFORM_HOME": str(tmp_path / "home")},
                         cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1, out.stderr
    assert f"history table {name} holds 2 event id(s) more than once (3 extra row(s)" in out.stderr
    assert "e1 (2 copies), e2 (3 copies)" in out.stderr and "Traceback" not in out.stderr
    assert len(rows_of(db_url, name)) == len(copies), "nothing deleted by the sink"
    statement = next(line.strip() for line in out.stderr.splitlines() if line.strip().startswith("DELETE FROM"))
    with engine.begin() as conn:
        conn.execute(text(statement))
    table = TableManager(engine).ensure(name, "append", [])
    assert event_index_name(name) in {ix["name"] for ix in inspect(engine).get_indexes(name)}
    assert sorted((r["_event_id"] or "", r["_kafka_partition"], r["_kafka_offset"]) for r in rows_of(db_url, name)) == [
        ("", 0, 5), ("", 0, 6), ("e1", 0, 0), ("e2", 0, 1)]   # first copies and the rows without an id
    with engine.begin() as conn:
        assert insert_rows(conn, table, [{**row, "_event_id": "e1", "_kafka_partition": 1, "_kafka_offset": 9}],
                           lambda ins: ins.on_conflict_do_nothing()) == 0   # a re-send: skipped by the index
    engine.dispose()


def sink_process(env: dict, topic: str, root: Path, db_url: str, group: str, batch_size: int = 15) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "dataplatform.cli", "sink", "sql", "--topic", topic, "--products-root", str(root),
         "--database-url", db_url, "--mode", "append", "--group", group, "--instance-id", f"{group}-1",
         "--batch-size", str(batch_size), "--batch-timeout", "0.05"],
        env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_history_holds_each_event_once_through_kills_and_re_sends(tmp_path, bootstrap, registry_url, postgres_url):
    """Ten rounds, on SQLite and PostgreSQL side by side: new events, a tombstone and
    re-sends of events of earlier rounds (same event id, later offset; written by a sink
    that has since been killed, so no repeat filter remembers them), then an append sink
    that kills itself (SIGKILL) at a chosen point of its write path: the n-th batch written
    but not committed, or committed but not told to Kafka. Then a sink that runs to the end."""
    rng = random.Random(20261206)
    product = new_topic_product(tmp_path, bootstrap, partitions=2)
    pub = ChangeSender(bootstrap, registry_url, product)
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "SCHEMA_REGISTRY_URL": registry_url,
           "DATAPLATFORM_HOME": str(tmp_path / "home")}
    urls = {"sqlite": f"sqlite:///{tmp_path / 'sink.db'}", "postgresql": postgres_url}
    groups = {db: unique_name(f"sql-kill-{db}") for db in urls}
    name, events, re_sent = table_name(product.topic, "append"), 0, 0

    def start(crash: str | None = None) -> dict[str, subprocess.Popen]:
        env_ = {**env, "DATAPLATFORM_SINK_CRASH": crash} if crash else env
        return {db: sink_process(env_, product.topic, tmp_path / "products", url, groups[db], batch_size=10)
                for db, url in urls.items()}

    for round_ in range(10):
        earlier = [e for _, e in pub.sent]
        for _ in range(20):
            pub.change("c", None, entity(events, 0))
            events += 1
        for event in rng.sample(earlier, min(6, len(earlier))):
            pub.send(product.name, event)
            re_sent += 1
        pub.tombstone(f"case-{round_}")
        pub.flush()
        crash = f"{('batch.written', 'batch.committed')[round_ % 2]}:{1 + round_ // 2 % 2}"
        procs = start(crash)
        try:
            wait_until(lambda: all(p.poll() is not None for p in procs.values()), timeout=90,
                       message=f"both sinks killed at {crash} in round {round_}")
        finally:
            for p in procs.values():
                if p.poll() is None:
                    p.kill()
        for db, p in procs.items():
            assert p.returncode == -signal.SIGKILL, f"{db}: {p.stderr.read().decode()[-2000:]}"
    assert re_sent == 54
    ends = {p: end_offset(bootstrap, product.topic, p) for p in (0, 1)}
    assert sum(ends.values()) == events + re_sent + 10

    procs = start()
    try:
        wait_until(lambda: all({o["partition"]: o["next_offset"] for o in offsets_of(url, groups[db])} == ends
                               for db, url in urls.items()), timeout=90, message="both sinks at the end offsets")
    finally:
        for p in procs.values():
            p.send_signal(signal.SIGTERM)
            p.wait(30)
    sent_ids = {e.event_id for _, e in pub.sent}
    for db, url in urls.items():
        rows = rows_of(url, name)
        ids = [r["_event_id"] for r in rows if r["_event_id"] is not None]
        assert len(ids) == len(set(ids)) == events and set(ids) == sent_ids, f"{db}: each event once"
        assert sum(r["_op"] == "t" for r in rows) == 10, f"{db}: every tombstone (no event id) kept"
        assert len({(r["_kafka_partition"], r["_kafka_offset"]) for r in rows}) == len(rows), db
        assert sum(o["rows_written"] for o in offsets_of(url, groups[db])) == len(rows), f"{db}: rows_written"

    out = subprocess.run([sys.executable, "-m", "dataplatform.cli", "sink", "status", "--json", "--database-url",
                          urls["postgresql"]], env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    mine = [s for s in json.loads(out.stdout) if s["group"] == groups["postgresql"]]
    assert sorted(s["partition"] for s in mine) == [0, 1] and all(s["lag"] == 0 for s in mine)
