"""The Parquet sink's files: rolled by size, age, day and schema; written exactly once even
when a write fails and is retried; small files of past days compacted; leftovers of an
interrupted compaction removed. No broker: batches are built by hand and handed to the
sink's write path, the part that decides what is on disk."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import fsspec
import pyarrow as pa
from fsspec.implementations.local import LocalFileSystem
import pyarrow.parquet as pq
import pytest

from dataplatform.config import Settings
from dataplatform.sinks.parquet import ParquetSink
from dataplatform.sinks.parquet_compaction import compact_product, merge_groups
from dataplatform.sinks.parquet_files import PartFile, list_files, partition_stats, remove_leftovers, written_offsets
from tests.support.sinks import DAY, decoded_batch, make_product
from tests.support.waiting import wait_until

@pytest.fixture
def product(tmp_path: Path):
    return make_product(tmp_path / "products")


def make_sink(product, out: Path, **kwargs) -> ParquetSink:
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:1", schema_registry_url="http://127.0.0.1:1")
    sink = ParquetSink(settings, products=[product], path=str(out), **{"compact_seconds": 0, **kwargs})
    sink.stored_offsets(product.topic, [0, 1])  # as on assignment: the sink owns partitions 0 and 1
    return sink


def batch(sink: ParquetSink, product, offsets: range, partition: int = 0, when: datetime = DAY,
          dead_letters: int = 0):
    return decoded_batch(sink, product, offsets, partition, when, dead_letters)


def rows(out: Path, product) -> list[dict]:
    files = sorted((out / product.name).glob("date=*/part-*.parquet"))
    return [r for f in files for r in pq.read_table(f).to_pylist()]


def names(out: Path, product) -> list[str]:
    return sorted(str(f.relative_to(out / product.name)) for f in (out / product.name).glob("date=*/part-*.parquet"))


def test_small_batches_gather_in_one_file_until_it_is_old_enough(product, tmp_path):
    out = tmp_path / "out"
    sink = make_sink(product, out, roll_seconds=3600)
    for start in range(0, 30, 3):  # ten batches of three rows: once one file per batch
        sink.write_batch(batch(sink, product, range(start, start + 3)))
    assert names(out, product) == []  # nothing is durable yet: a crash reads them again
    assert sink.durable_offsets(batch(sink, product, range(30, 31))) == {(product.topic, 0): 0}
    sink.roll_seconds = 0.001
    wait_until(lambda: sink.on_tick() or names(out, product), timeout=5, message="the old file written")
    assert names(out, product) == ["date=2026-11-27/part-0-0-29.parquet"]
    assert [r["_kafka_offset"] for r in rows(out, product)] == list(range(30))
    assert written_offsets(fsspec.filesystem("file"), str(out / product.name)) == {0: 30}


def test_a_file_is_written_when_it_reaches_the_roll_size(product, tmp_path):
    out = tmp_path / "out"
    sink = make_sink(product, out, roll_size_mb=0.02, roll_seconds=3600)  # ~20 kB of rows in memory
    for start in range(0, 400, 10):
        sink.write_batch(batch(sink, product, range(start, start + 10)))
    files = list_files(fsspec.filesystem("file"), str(out / product.name))
    assert 2 <= len(files) < 40
    assert [(f.first, f.last) for f in files] == [(f.first, f.last) for f in sorted(files, key=lambda f: f.first)]
    assert all(b.first == a.last + 1 for a, b in zip(files, files[1:]))  # contiguous: the names are the checkpoint
    sink.flush(stopping=True)  # a clean stop writes what is open
    assert sorted(r["_kafka_offset"] for r in rows(out, product)) == list(range(400))


def test_a_new_day_starts_a_new_file_and_trailing_dead_letters_belong_to_the_range(product, tmp_path):
    out = tmp_path / "out"
    sink = make_sink(product, out, roll_seconds=3600)
    sink.write_batch(batch(sink, product, range(0, 5)))
    sink.write_batch(batch(sink, product, range(5, 8), when=DAY + timedelta(days=1), dead_letters=2))
    sink.finish_open_files()
    assert names(out, product) == ["date=2026-11-27/part-0-0-4.parquet", "date=2026-11-28/part-0-5-9.parquet"]
    assert written_offsets(fsspec.filesystem("file"), str(out / product.name)) == {0: 10}


class FlakyFileSystem(LocalFileSystem):
    """Fails the first rename: the moment after the rows are on disk under a temporary name."""

    fail_next_move = True

    def mv(self, *args, **kwargs):
        if FlakyFileSystem.fail_next_move:
            FlakyFileSystem.fail_next_move = False
            raise OSError("disk went away")
        return super().mv(*args, **kwargs)


def test_a_failed_write_retried_writes_each_row_once_and_leaves_no_temporary_file(product, tmp_path):
    out = tmp_path / "out"
    sink = make_sink(product, out, roll_size_mb=0.005, roll_seconds=3600)
    sink.fs = FlakyFileSystem()
    first = batch(sink, product, range(0, 60))
    with pytest.raises(OSError):
        sink.write_batch(first)
    sink.write_batch(first)  # what BatchingSink.retrying does
    sink.write_batch(batch(sink, product, range(60, 70)))
    sink.finish_open_files()
    offsets = [r["_kafka_offset"] for r in rows(out, product)]
    assert sorted(offsets) == list(range(70)) and len(offsets) == len(set(offsets))
    assert not list(out.rglob("*.tmp"))


def test_revoked_partitions_drop_their_open_file(product, tmp_path):
    out = tmp_path / "out"
    sink = make_sink(product, out)
    sink.write_batch(batch(sink, product, range(0, 5), partition=1))
    sink.partitions_revoked({(product.topic, 1)})
    sink.finish_open_files()
    assert names(out, product) == []  # the next owner reads them from Kafka


def test_compaction_merges_small_files_of_past_days_only(product, tmp_path):
    out = tmp_path / "out"
    sink = make_sink(product, out, roll_seconds=3600)
    for start in range(0, 50, 5):  # ten files on 27 November, then three on 28 November
        sink.write_batch(batch(sink, product, range(start, start + 5)))
        sink.finish_open_files()
    for start in range(50, 65, 5):
        sink.write_batch(batch(sink, product, range(start, start + 5), when=DAY + timedelta(days=1)))
        sink.finish_open_files()
    before = rows(out, product)
    assert sink.compact(today=date(2026, 11, 28)) == 10
    assert names(out, product) == ["date=2026-11-27/part-0-0-49.parquet", "date=2026-11-28/part-0-50-54.parquet",
                                   "date=2026-11-28/part-0-55-59.parquet", "date=2026-11-28/part-0-60-64.parquet"]
    assert sorted(r["_kafka_offset"] for r in rows(out, product)) == sorted(r["_kafka_offset"] for r in before)
    fs = fsspec.filesystem("file")
    assert written_offsets(fs, str(out / product.name)) == {0: 65}  # the checkpoint is unchanged
    stats = partition_stats(fs, str(out / product.name))[0]
    assert (stats.files, stats.rows, stats.days) == (4, 65, 2)


def test_the_running_sink_compacts_past_days_by_itself_and_outlives_a_failed_compaction(product, tmp_path,
                                                                                        monkeypatch):
    out = tmp_path / "out"
    sink = make_sink(product, out, roll_seconds=3600, compact_seconds=3600)
    for start in range(0, 15, 5):  # three files of a day that is over (27 November 2026)
        sink.write_batch(batch(sink, product, range(start, start + 5)))
        sink.finish_open_files()
    sink.on_tick()  # the first turn after assignment compacts
    assert names(out, product) == ["date=2026-11-27/part-0-0-14.parquet"]

    def broken(*args, **kwargs):
        raise OSError("bucket unreachable")

    monkeypatch.setattr("dataplatform.sinks.parquet.compact_product", broken)
    sink._last_compaction = None
    sink.on_tick()  # logged, not raised: the sink keeps consuming
    assert sink._last_compaction is not None


def test_leftovers_of_an_interrupted_compaction_are_removed_on_assignment(product, tmp_path):
    out = tmp_path / "out"
    sink = make_sink(product, out, roll_seconds=3600)
    for start in range(0, 20, 5):
        sink.write_batch(batch(sink, product, range(start, start + 5)))
        sink.finish_open_files()
    folder = out / product.name / "date=2026-11-27"
    sources = sorted(folder.glob("part-*.parquet"), key=lambda p: int(p.name.split("-")[2]))
    merged = pq.read_table(sources[0]).to_pylist() + pq.read_table(sources[1]).to_pylist()
    # the merged file of the first two was written, then the process died before deleting them
    pq.write_table(pa.Table.from_pylist(merged, schema=pq.read_schema(sources[0])), folder / "part-0-0-9.parquet")
    (folder / ".part-0-20.0123abcd.tmp").write_bytes(b"half a file")
    assert len(rows(out, product)) == 30  # a reader now would see ten rows twice
    restarted = make_sink(product, out)
    assert restarted.stored_offsets(product.topic, [0]) == {0: 20}
    assert names(out, product) == ["date=2026-11-27/part-0-0-9.parquet", "date=2026-11-27/part-0-10-14.parquet",
                                   "date=2026-11-27/part-0-15-19.parquet"]
    assert sorted(r["_kafka_offset"] for r in rows(out, product)) == list(range(20))
    assert not list(folder.glob(".*.tmp"))


def test_leftover_removal_touches_only_the_given_partitions(tmp_path):
    fs = fsspec.filesystem("file")
    folder = tmp_path / "p" / "date=2026-11-27"
    folder.mkdir(parents=True)
    for name in ("part-0-0-9.parquet", "part-0-0-4.parquet", "part-1-0-4.parquet", ".part-1-5.00ff.tmp"):
        (folder / name).write_bytes(b"x")
    assert [Path(p).name for p in remove_leftovers(fs, str(tmp_path / "p"), [0])] == ["part-0-0-4.parquet"]
    assert sorted(p.name for p in folder.iterdir()) == [".part-1-5.00ff.tmp", "part-0-0-9.parquet", "part-1-0-4.parquet"]


def test_merge_groups_leave_big_files_alone_and_stay_under_the_target():
    def f(first, size):
        return PartFile(f"p/part-0-{first}-{first + 9}.parquet", "2026-11-27", 0, first, first + 9, size)

    files = [f(0, 10), f(10, 10), f(20, 60), f(30, 10), f(40, 10), f(50, 10), f(60, 10)]
    groups = merge_groups(files, target_bytes=100)
    assert [[x.first for x in g] for g in groups] == [[0, 10], [30, 40, 50, 60]]
    assert merge_groups([f(0, 10)], target_bytes=100) == []


def test_compact_product_without_files_does_nothing(tmp_path):
    assert compact_product(fsspec.filesystem("file"), str(tmp_path / "none"), before=date(2026, 1, 1),
                           target_bytes=1000) == 0
