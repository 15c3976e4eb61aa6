"""The SQL sink on a real broker, the real registry, and both SQLite and PostgreSQL: upserts,
soft deletes, history, dead letters, schema evolution, personal fields. How the history
table holds each event once through re-sends and kills: test_sink_sql_history_once.py."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timezone

import pytest
from sqlalchemy import create_engine, inspect

from dataplatform.product_io.dead_letters import H_ERROR_CLASS, H_ERROR_MESSAGE, H_SOURCE_OFFSET, H_SOURCE_PARTITION, H_SOURCE_TOPIC
from dataplatform.sinks.sql.tables import table_name
from dataplatform.sinks.sql.writer import SqlSink
from tests.support.kafka import consume, unique_name
from tests.support.sending import ChangeSender
from tests.support.sinks import entity, make_product, running
from tests.support.sql_sink import new_topic_product, offsets_of, product_with_cases, rows_of, settings
from tests.support.waiting import wait_until


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
    product, pub = product_with_cases(tmp_path, bootstrap, registry_url)
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
    product, pub = product_with_cases(tmp_path, bootstrap, registry_url)
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
