"""The Iceberg sink's checkpoint (sinks/iceberg/offsets.py, commits.py, maintenance.py) on a
real SQL catalog on SQLite: offsets in the snapshot summary, found through snapshots of
other writers, commits that repeat nothing, a lost race retried, orphan files removed."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog

from dataplatform.sinks.columns import PersonalDataPolicy
from dataplatform.sinks.iceberg import offsets
from dataplatform.sinks.iceberg.commits import IcebergRow, TableCommitter
from dataplatform.sinks.iceberg.maintenance import expire_snapshots, referenced_files, remove_orphan_files
from dataplatform.sinks.iceberg.schema import EntityShape
from dataplatform.sinks.iceberg.tables import ensure_table
from tests.support.sinks import DAY, ENTITY, entity

T = "hmpps.cases.v1"


def catalog(tmp_path) -> SqlCatalog:
    return SqlCatalog("t", uri=f"sqlite:///{tmp_path / 'c.db'}", warehouse=f"file://{tmp_path / 'wh'}")


def rows(shape: EntityShape, offsets_: range, partition: int = 0, deleted: set[int] = frozenset()) -> list[IcebergRow]:
    out = []
    for o in offsets_:
        key = f"case-{o % 7}"
        row = shape.values(entity(o % 7, o)) | {"_key": key, "_op": "d" if o in deleted else "u", "_event_id": f"e{o}",
                                                "_ts": DAY, "_kafka_partition": partition, "_kafka_offset": o,
                                                "_deleted": o in deleted}
        out.append(IcebergRow(T, partition, o, key, o in deleted, row))
    return out


def setup(tmp_path, history: bool):
    shape = EntityShape(ENTITY, PersonalDataPolicy({"person_ref"}))
    cat = catalog(tmp_path)
    ensure_table(cat, ("hmpps", "t"), shape.schema(history=history), history)
    return shape, TableCommitter(cat, ("hmpps", "t"), "g", history=history)


def test_offsets_round_trip_and_merge():
    stored = {(T, 0): 5, (T, 1): 9}
    assert offsets.decode(offsets.encode(stored)) == stored
    assert offsets.advanced(stored, {(T, 0): 5, (T, 1): 12, (T, 2): 1}) == {(T, 1): 12, (T, 2): 1}
    props = offsets.snapshot_properties("g", stored, {(T, 1): 12})
    assert offsets.decode(props["dataplatform.offsets.g"]) == {(T, 0): 5, (T, 1): 12}


def test_a_history_commit_repeated_after_a_crash_writes_only_what_the_table_lacks(tmp_path):
    shape, history = setup(tmp_path, history=True)
    assert history.offsets() == {}
    history.commit(rows(shape, range(0, 10)), {(T, 0): 10})
    history.commit(rows(shape, range(0, 15)), {(T, 0): 15})   # read again from 0 after a crash: 10..14 are new
    history.commit(rows(shape, range(0, 15)), {(T, 0): 15})   # the same batch again: nothing to do
    table = history.load()
    offs = sorted(table.scan().to_arrow()["_kafka_offset"].to_pylist())
    assert offs == list(range(15)) and len(table.snapshots()) == 2
    assert history.offsets() == {(T, 0): 15}


def test_offsets_survive_a_snapshot_written_by_someone_else_and_snapshot_expiry(tmp_path):
    shape, history = setup(tmp_path, history=True)
    history.commit(rows(shape, range(0, 3)), {(T, 0): 3})
    table = history.load()
    foreign = pa.Table.from_pylist([r.row for r in rows(shape, range(100, 101))], schema=table.scan().to_arrow().schema)
    table.append(foreign)   # another writer's snapshot: no offsets of the group
    assert offsets.stored_offsets(history.load(), "g") == {(T, 0): 3}
    for n in range(3, 9):
        history.commit(rows(shape, range(n, n + 1)), {(T, 0): n + 1})
    table = history.load()
    before = len(table.snapshots())
    assert expire_snapshots(table, "g", timedelta(0), keep_last=2) == before - 2 == 6
    assert len(history.load().snapshots()) == 2 and history.offsets() == {(T, 0): 9}


def test_current_state_keeps_each_keys_last_event_and_deletes(tmp_path):
    shape, current = setup(tmp_path, history=False)
    deleted = {12, 20}   # case-5 deleted then changed again (19), case-6 deleted by its last event
    for start in range(0, 21, 3):
        current.commit(rows(shape, range(start, min(start + 3, 21)), deleted=deleted), {(T, 0): min(start + 3, 21)})
    table = current.load()
    got = {r["_key"]: r["_kafka_offset"] for r in table.scan().to_arrow().to_pylist()}
    expected = {}
    for o in range(21):
        expected[f"case-{o % 7}"] = None if o in deleted else o
    assert got == {k: v for k, v in expected.items() if v is not None}
    assert int(table.current_snapshot().summary["total-data-files"]) == 1   # rewritten whole, not a file per commit


def test_a_commit_that_lost_a_race_is_retried_on_the_new_metadata(tmp_path, monkeypatch):
    shape, history = setup(tmp_path, history=True)
    other = TableCommitter(history.catalog, history.identifier, "g", history=True)
    load, raced = history.load, []

    def load_then_race():   # between our load and our commit, another instance commits partition 1
        table = load()
        if not raced:
            raced.append(1)
            other.commit(rows(shape, range(0, 4), partition=1), {(T, 1): 4})
        return table
    monkeypatch.setattr(history, "load", load_then_race)
    history.commit(rows(shape, range(0, 5)), {(T, 0): 5})
    table = load()
    assert offsets.stored_offsets(table, "g") == {(T, 0): 5, (T, 1): 4}   # both instances' offsets kept
    assert table.scan().to_arrow().num_rows == 9


def test_orphan_files_are_removed_once_old_enough(tmp_path):
    shape, history = setup(tmp_path, history=True)
    history.commit(rows(shape, range(0, 3)), {(T, 0): 3})
    table = history.load()
    data_dir = tmp_path / "wh" / "hmpps" / "t" / "data"
    orphan = data_dir / "leftover-of-an-interrupted-commit.parquet"
    orphan.write_bytes(b"x")
    assert remove_orphan_files(table, timedelta(hours=1)) == []   # too young: maybe a commit in flight
    old = time.time() - 7200
    os.utime(orphan, (old, old))
    for f in (tmp_path / "wh").rglob("*"):
        if f.is_file():
            os.utime(f, (old, old))
    assert remove_orphan_files(table, timedelta(hours=1)) == [str(orphan)]
    assert all(os.path.exists(f.removeprefix("file://")) for f in referenced_files(table))
    assert table.scan().to_arrow().num_rows == 3
