"""The SQL sink on a real broker, the real registry, and both SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import signal
import subprocess
import sys
import threading
from datetime import timezone
from pathlib import Path

import pytest
from sqlalchemy import MetaData, Table, create_engine, insert, inspect, select, text

from dataplatform.config import Settings
from dataplatform.product_io.dead_letters import H_ERROR_CLASS, H_ERROR_MESSAGE, H_SOURCE_OFFSET, H_SOURCE_PARTITION, H_SOURCE_TOPIC
from dataplatform.kafka_config import client_config
from dataplatform.sinks.sql.bulk import insert_rows
from dataplatform.sinks.sql.history_index import event_index_name
from dataplatform.sinks.sql.tables import TableManager, table_name
from dataplatform.sinks.sql.writer import SqlSink
from tests.support.kafka import consume, create_topic, end_offset, unique_name
from tests.support.sending import ChangeSender
from tests.support.sinks import entity, make_product, running
from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sink.db'}"
    return request.getfixturevalue("postgres_url")


def rows_of(url: str, name: str) -> list[dict]:
    engine = create_engine(url)
    try:
        if not inspect(engine).has_table(name):
            return []
        table = Table(name, MetaData(), autoload_with=engine)
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(table))]
    finally:
        engine.dispose()


def offsets_of(url: str, group: str) -> list[dict]:
    return [r for r in rows_of(url, "sink_offsets") if r["group_id"] == group]


def settings(bootstrap: str, registry: str, **kw) -> Settings:
    return Settings(kafka_bootstrap_servers=bootstrap, schema_registry_url=registry, **kw)


def new_topic_product(tmp_path: Path, bootstrap: str, partitions: int = 1, **kw):
    product = make_product(tmp_path / "products", **kw)
    create_topic(bootstrap, product.topic, partitions=partitions)
    return product


def utc(v):
    return v.replace(tzinfo=timezone.utc) if v.tzinfo is None else v.astimezone(timezone.utc)


def test_upsert_keeps_final_state_per_key_with_typed_columns(tmp_path, bootstrap, registry_url, db_url):
    product = new_topic_product(tmp_path, bootstrap, partitions=2)
    pub = ChangeSender(bootstrap, registry_url, product)
    for i in range(10):
        pub.change("c", None, entity(i, 0))
    for i in range(10):
        pub.change("u", entity(i, 0), entity(i, 1))
    for i in range(3):
        pub.change("d", entity(i, 1), None)
    pub.tombstone("case-0")
    pub.tombstone("case-1")
    pub.change("u", entity(3, 1), entity(3, 2))
    pub.flush()
    expected = {f"case-{i}": entity(i, 2 if i == 3 else 1) for i in range(3, 10)}
    group = unique_name("sql-upsert")
    name = table_name(product.topic)

    with running(SqlSink(settings(bootstrap, registry_url), products=[product], database_url=db_url, group=group,
                         batch_timeout=0.2)):
        wait_until(lambda: {r["_key"] for r in rows_of(db_url, name)} == set(expected) and
                   sum(o["next_offset"] for o in offsets_of(db_url, group)) == 26, timeout=60,
                   message="final state per key and all 26 offsets stored")

    rows = {r["_key"]: r for r in rows_of(db_url, name)}
    assert set(rows) == set(expected)
    for key, e in expected.items():
        r = rows[key]
        assert (r["case_id"], r["status"], r["amount"], r["due"], r["note"]) == \
               (e["case_id"], e["status"], e["amount"], e["due"], e["note"])
        assert utc(r["updated_at"]) == e["updated_at"]
        assert (r["address__town"], r["address__postcode"]) == (e["address"]["town"], e["address"]["postcode"])
        assert r["tags"] == e["tags"] and r["counts"] == e["counts"]
        assert r["_op"] == "u" and r["_deleted"] is False
    assert "person_ref" not in next(iter(rows.values())), "personal fields are not written by default"
    columns = {c["name"]: c["type"] for c in inspect(create_engine(db_url)).get_columns(name)}
    assert "NUMERIC" in str(columns["amount"]).upper() and "DATE" in str(columns["due"]).upper()

    from dataplatform.sinks.status import sink_status
    status = [s for s in sink_status(settings(bootstrap, registry_url), database_url=db_url) if s.group == group]
    assert sorted(s.partition for s in status) == [0, 1] and all(s.lag == 0 for s in status)
    assert sum(s.rows_written for s in status) == 26


def test_soft_delete_keeps_row_marked_deleted(tmp_path, bootstrap, registry_url, db_url):
    product = new_topic_product(tmp_path, bootstrap)
    pub = ChangeSender(bootstrap, registry_url, product)
    for i in range(3):
        pub.change("c", None, entity(i, 0))
    pub.change("d", entity(1, 0), None)
    pub.tombstone("case-1")
    pub.flush()
    name = table_name(product.topic)
    group = unique_name("sql-soft")
    with running(SqlSink(settings(bootstrap, registry_url), products=[product], database_url=db_url, group=group,
                         delete_mode="soft", batch_size=2, batch_timeout=0.2)):
        wait_until(lambda: sum(o["next_offset"] for o in offsets_of(db_url, group)) == 5, timeout=60,
                   message="all 5 events written")
    rows = {r["_key"]: r["_deleted"] for r in rows_of(db_url, name)}
    assert rows == {"case-0": False, "case-1": True, "case-2": False}


def test_append_keeps_every_event(tmp_path, bootstrap, registry_url, db_url):
    product = new_topic_product(tmp_path, bootstrap, partitions=2)
    pub = ChangeSender(bootstrap, registry_url, product)
    for i in range(6):
        pub.change("c", None, entity(i, 0))
        pub.change("u", entity(i, 0), entity(i, 1))
    pub.change("d", entity(0, 1), None)
    pub.tombstone("case-0")
    pub.flush()
    name = table_name(product.topic, "append")
    assert name.endswith("_history")
    with running(SqlSink(settings(bootstrap, registry_url), products=[product], database_url=db_url, mode="append",
                         group=unique_name("sql-append"), batch_size=5, batch_timeout=0.2)):
        wait_until(lambda: len(rows_of(db_url, name)) == 14, timeout=60, message="14 history rows")
    rows = rows_of(db_url, name)
    assert len({(r["_kafka_partition"], r["_kafka_offset"]) for r in rows}) == 14
    ops = sorted(r["_op"] for r in rows)
    assert ops == sorted(["c"] * 6 + ["u"] * 6 + ["d", "t"])
    assert {r["case_id"] for r in rows if r["_op"] == "u"} == {f"case-{i}" for i in range(6)}


def test_an_event_sent_again_after_its_producer_crashed_is_written_once(tmp_path, bootstrap, registry_url, db_url):
    from confluent_kafka import Producer

    product = new_topic_product(tmp_path, bootstrap)
    pub = ChangeSender(bootstrap, registry_url, product)
    for i in range(3):
        pub.change("c", None, entity(i, 0))
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


def test_poison_messages_go_to_the_dead_letter_topic_and_the_sink_carries_on(tmp_path, bootstrap, registry_url, db_url):
    product = new_topic_product(tmp_path, bootstrap)
    pub = ChangeSender(bootstrap, registry_url, product)
    pub.change("c", None, entity(1, 0))
    pub.raw(b"case-x", b"this is not avro at all")
    good = pub.serdes[product.name].serialize_value({"op": "c", "before": None, "after": entity(9, 0), "ts_ms": 1,
                                      "source": {"system": "t", "event_id": "e", "position": 1}, "transaction": None})
    pub.raw(b"case-9", b"\x07" + good[1:])  # a bad magic byte
    pub.change("c", None, entity(2, 0))
    pub.flush()
    group = unique_name("sql-dlq")
    name = table_name(product.topic)
    with running(SqlSink(settings(bootstrap, registry_url), products=[product], database_url=db_url, group=group,
                         batch_timeout=0.2)):
        wait_until(lambda: {r["_key"] for r in rows_of(db_url, name)} == {"case-1", "case-2"}, timeout=60,
                   message="the good records after the poison are written")
        dead = consume(bootstrap, product.dead_letter_topic, 2)
    offsets = offsets_of(db_url, group)
    assert offsets[0]["next_offset"] == 4, "the dead letters' offsets are committed with the batch"
    assert offsets[0]["last_error"]
    assert [m.offset() for m in dead] == [0, 1]
    for msg, source_offset in zip(dead, (1, 2)):
        headers = {k: v.decode() for k, v in msg.headers()}
        assert headers[H_SOURCE_TOPIC] == product.topic
        assert headers[H_SOURCE_PARTITION] == "0" and headers[H_SOURCE_OFFSET] == str(source_offset)
        assert headers[H_ERROR_CLASS] and headers[H_ERROR_MESSAGE]
        assert "SECRET" not in headers[H_ERROR_MESSAGE]
    assert dead[1].value() == b"\x07" + good[1:]


def test_schema_evolution_adds_a_column_without_losing_rows(tmp_path, bootstrap, registry_url, db_url):
    product = new_topic_product(tmp_path, bootstrap)
    evolved = make_product(tmp_path / "evolved", name=product.name, extra_field=True)
    old, new = ChangeSender(bootstrap, registry_url, product), ChangeSender(bootstrap, registry_url, evolved)
    for i in range(3):
        old.change("c", None, entity(i, 0))
    old.flush()
    name = table_name(product.topic)
    with running(SqlSink(settings(bootstrap, registry_url), products=[product], database_url=db_url,
                         group=unique_name("sql-evolve"), batch_timeout=0.2)):
        wait_until(lambda: len(rows_of(db_url, name)) == 3, timeout=60, message="3 rows of schema v1")
        assert "priority" not in rows_of(db_url, name)[0]
        for i in range(3, 6):
            new.change("c", None, entity(i, 0, extra=True))
        new.flush()
        wait_until(lambda: len(rows_of(db_url, name)) == 6, timeout=60, message="6 rows after the new version")
    rows = {r["_key"]: r for r in rows_of(db_url, name)}
    assert {k: r["priority"] for k, r in rows.items()} == {
        "case-0": None, "case-1": None, "case-2": None, "case-3": 30, "case-4": 40, "case-5": 50}


def test_personal_fields_hashed_when_allowed(tmp_path, bootstrap, registry_url, db_url):
    product = new_topic_product(tmp_path, bootstrap)
    pub = ChangeSender(bootstrap, registry_url, product)
    for i in range(3):
        pub.change("c", None, entity(i, 0))
    pub.flush()
    key = "test-hmac-key"
    name = table_name(product.topic)
    with running(SqlSink(settings(bootstrap, registry_url, sink_personal_data_key=key), products=[product],
                         database_url=db_url, allow_personal=[product.name], group=unique_name("sql-pii"),
                         batch_timeout=0.2)):
        wait_until(lambda: len(rows_of(db_url, name)) == 3, timeout=60, message="3 rows")
    for r in rows_of(db_url, name):
        clear = entity(int(r["_key"].split("-")[1]), 0)["person_ref"]
        assert r["person_ref"] == hmac.new(key.encode(), clear.encode(), hashlib.sha256).hexdigest()
        assert not any("SECRET" in str(v) for v in r.values())
    with pytest.raises(ValueError, match="SINK_PERSONAL_DATA_KEY"):
        SqlSink(settings(bootstrap, registry_url), products=[product], database_url=db_url,
                allow_personal=[product.name])


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
