"""Schema-to-column mapping, table names, and the SQL sink waiting out a locked database."""

from __future__ import annotations

import sqlite3
import threading
from datetime import timezone

from sqlalchemy import JSON, Date, DateTime, Numeric, String, Text, select

from dataplatform.config import Settings
from dataplatform.sinks.records import Batch, SinkRecord
from dataplatform.sinks.columns import PersonalDataPolicy, entity_columns, entity_values, extract
from dataplatform.sinks.sql.tables import table_name
from dataplatform.sinks.sql.types import sql_type
from dataplatform.sinks.sql.writer import SqlSink, make_engine
from tests.support.sinks import ENTITY, entity, make_product
from tests.support.waiting import wait_until


def test_columns_flatten_records_and_map_logical_types():
    cols = {c.name: c for c in entity_columns(ENTITY, PersonalDataPolicy({"person_ref"}))}
    assert "person_ref" not in cols
    assert {n: c.kind for n, c in cols.items()} == {
        "case_id": "string", "status": "string", "amount": "decimal", "due": "date", "updated_at": "timestamp",
        "note": "string", "address__town": "string", "address__postcode": "string", "tags": "json", "counts": "json"}
    assert cols["note"].nullable and cols["address__postcode"].nullable and not cols["case_id"].nullable
    assert isinstance(sql_type(cols["updated_at"]), DateTime) and sql_type(cols["updated_at"]).timezone
    assert isinstance(sql_type(cols["due"]), Date) and isinstance(sql_type(cols["tags"]), JSON)
    amount = sql_type(cols["amount"])
    assert isinstance(amount, Numeric) and (amount.precision, amount.scale) == (10, 2)
    assert isinstance(sql_type(cols["status"]), Text)


def test_personal_fields_become_keyed_hashes_when_allowed():
    policy = PersonalDataPolicy({"person_ref"}, key=b"k")
    cols = {c.name: c for c in entity_columns(ENTITY, policy)}
    assert cols["person_ref"].kind == "hash" and isinstance(sql_type(cols["person_ref"]), String)
    digest = policy.hash("PERSON-1")
    assert len(digest) == 64 and digest != policy.hash("PERSON-2") and "PERSON" not in digest


def test_row_values_read_top_level_nested_hashed_and_missing_fields():
    """entity_values reads top-level fields in one lookup: the row must still be extract's, column by column."""
    policy = PersonalDataPolicy({"person_ref"}, key=b"k")
    columns = entity_columns(ENTITY, policy)
    e = entity(4)
    del e["note"]                       # absent, as in a record of an older schema
    row = entity_values(e, columns, policy)
    assert row == {c.name: extract(e, c, policy) for c in columns}
    assert row["case_id"] == "case-4" and row["note"] is None and row["address__town"] == "Town 4"
    assert row["person_ref"] == policy.hash("PERSON-4-SECRET") and row["tags"] == ["t0", "x"]
    assert entity_values(None, columns, policy) == {c.name: None for c in columns}


def test_table_names_follow_the_topic():
    assert table_name("hmpps.prison_releases_housing_need.v1") == "hmpps__prison_releases_housing_need__v1"
    assert table_name("hmpps.prison_releases_housing_need.v1", "append") == "hmpps__prison_releases_housing_need__v1_history"
    long = table_name("platforms." + "x" * 80 + ".v1", "append")
    assert len(long) <= 63 and long != table_name("platforms." + "x" * 81 + ".v1", "append")


def test_sink_waits_for_a_locked_database_then_writes_everything(tmp_path):
    """A real SQLite file locked by another connection: the sink retries with backoff and
    writes every row and its offset once the lock goes, skipping nothing."""
    product = make_product(tmp_path / "products")
    db = tmp_path / "locked.db"
    sink = SqlSink(Settings(kafka_bootstrap_servers="unused:9092", schema_registry_url="http://unused"),
                   products=[product], engine=make_engine(f"sqlite:///{db}", sqlite_timeout=0.05), group="g")
    sink.open()
    batch = Batch()
    for offset in range(20):
        e = entity(offset, 0)
        record = SinkRecord(product.topic, 0, offset, e["case_id"], {
            "op": "c", "before": None, "after": e, "ts_ms": e["updated_at"],
            "source": {"system": "t", "event_id": f"e{offset}", "position": 1}, "transaction": None},
            None, None, product)
        batch.items.append(sink.prepare(record))
    batch.next_offsets[(product.topic, 0)] = 20
    batch.rows[(product.topic, 0)] = 20

    attempts = []
    original = sink.write_batch

    def counting(b: Batch) -> None:
        attempts.append(1)
        original(b)

    locker = sqlite3.connect(db, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    done = threading.Event()
    thread = threading.Thread(target=lambda: (sink.retrying(lambda: counting(batch)), done.set()), daemon=True)
    thread.start()
    wait_until(lambda: len(attempts) >= 3, timeout=20, message="the sink retrying while the database is locked")
    assert not done.is_set(), "the write cannot succeed while the lock is held"
    locker.execute("COMMIT")
    locker.close()
    assert done.wait(20), "the sink wrote once the lock was released"
    table = sink.tables.tables[table_name(product.topic)]
    with sink.engine.connect() as conn:
        keys = sorted(r[0] for r in conn.execute(select(table.c._key)))
        offsets = conn.execute(select(sink._offsets.c.next_offset, sink._offsets.c.rows_written)).all()
        ts = conn.execute(select(table.c.updated_at).where(table.c._key == "case-1")).scalar_one()
    assert keys == sorted(f"case-{i}" for i in range(20))
    assert offsets == [(20, 20)]
    assert ts.replace(tzinfo=timezone.utc) == entity(1, 0)["updated_at"]
