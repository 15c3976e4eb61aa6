"""The Parquet sink: every event of a data product as rows in Parquet files, for analysts.

Layout: ``<path>/<product>/date=YYYY-MM-DD/part-<partition>-<firstoffset>-<lastoffset>.parquet``
(the date is the event's ``ts_ms`` in UTC). ``<path>`` is a folder or any fsspec URL.

Files roll: rows of a partition and day gather in an open file (in memory) that is
written when it holds ``roll_bytes`` or is ``roll_seconds`` old, when the day or the
schema changes, and when the sink stops. So a quiet topic makes one file per roll
interval, not one per batch; days that are over are compacted into fewer, larger files
(:mod:`dataplatform.sinks.parquet_compaction`).

The file names are the checkpoint (:mod:`dataplatform.sinks.parquet_files`). Each file holds one
partition's offsets ``first..last``, files are written in offset order and appear
atomically (written under a hidden temporary name, then renamed), so on start the sink
resumes each partition after the largest ``last`` on disk: a crash loses only open files,
whose rows are read again, and a re-run writes no row twice. (A file's range includes
dead-lettered records after its rows; dead letters with no open file are dead-lettered
again after a crash, which is harmless.)
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

import fsspec
import pyarrow as pa

from dataplatform.config import Settings
from dataplatform.metrics import SINK_BUFFERED_ROWS, SINK_ROWS
from dataplatform.products.envelope import event_id_of, from_epoch_ms
from dataplatform.products.product import DataProduct
from dataplatform.sinks.base import BatchingSink
from dataplatform.sinks.columns import FieldColumn, entity_columns, entity_values, op_and_entity
from dataplatform.sinks.parquet_compaction import compact_product
from dataplatform.sinks.parquet_files import product_dir, remove_leftovers, written_offsets
from dataplatform.sinks.parquet_writer import OpenFile, write_open_file
from dataplatform.sinks.records import Batch, SinkRecord, TopicPartitionKey
from dataplatform.sinks.retrying import SinkStopped

log = logging.getLogger(__name__)
TOMBSTONE_OP = "t"
MB = 1024 * 1024

META_FIELDS = [
    pa.field("_key", pa.string()), pa.field("_op", pa.string()), pa.field("_event_id", pa.string()),
    pa.field("_ts", pa.timestamp("ms", tz="UTC")), pa.field("_kafka_partition", pa.int32()),
    pa.field("_kafka_offset", pa.int64()), pa.field("_deleted", pa.bool_()),
]


def arrow_type(column: FieldColumn) -> pa.DataType:
    if column.kind == "decimal":
        return pa.decimal128(column.precision or 38, column.scale or 0)
    return {
        "string": pa.string(), "int": pa.int32(), "long": pa.int64(), "float": pa.float32(), "double": pa.float64(),
        "boolean": pa.bool_(), "bytes": pa.binary(), "timestamp": pa.timestamp("ms", tz="UTC"), "date": pa.date32(),
        "time": pa.time64("us"), "json": pa.string(), "hash": pa.string(),
    }[column.kind]


@dataclass
class ParquetRow:
    topic: str
    partition: int
    offset: int
    day: date
    columns: list[FieldColumn]
    row: dict[str, Any]


class ParquetSink(BatchingSink):
    """Keep data product topics as date-partitioned Parquet files; ``run(stop_event)`` until stopped."""

    default_group = "dataplatform-sink-parquet"
    rows_durable_when_written = False   # counted when their file is written (see _write)

    def __init__(self, settings: Settings | None = None, *, topics: Sequence[str] = (),
                 products: Sequence[DataProduct] = (), path: str | None = None,
                 roll_size_mb: float | None = None, roll_seconds: float | None = None,
                 compact_seconds: float | None = None, **kwargs: Any) -> None:
        super().__init__(settings, topics=topics, products=products, **kwargs)
        self.path = str(path or (self.settings.dataplatform_home / "parquet").resolve())
        self.fs, self.root = fsspec.core.url_to_fs(self.path)
        self._shapes: dict[tuple[str, int], list[FieldColumn]] = {}
        pick = lambda given, default: default if given is None else given  # noqa: E731
        self.roll_bytes = int(pick(roll_size_mb, self.settings.parquet_roll_size_mb) * MB)
        self.roll_seconds = float(pick(roll_seconds, self.settings.parquet_roll_seconds))
        self.compact_seconds = float(pick(compact_seconds, self.settings.parquet_compact_seconds))
        if self.roll_bytes <= 0 or self.roll_seconds <= 0 or self.compact_seconds < 0:
            raise ValueError("the roll size and interval must be above 0, and the compaction interval 0 (off) or more")
        self._open: dict[TopicPartitionKey, OpenFile] = {}
        self._assigned: set[TopicPartitionKey] = set()
        self._last_compaction: float | None = None  # compact soon after start: old days may wait
        self.files_written = 0

    def product_dir(self, topic: str) -> str:
        return product_dir(self.root, self.products[topic].name)

    def open(self) -> None:
        self.fs.makedirs(self.root, exist_ok=True)

    def stored_offsets(self, topic: str, partitions: list[int]) -> dict[int, int]:
        """Per partition, one past the largest ``lastoffset`` in the file names, once what a
        crashed predecessor left half done is removed."""
        for partition in partitions:
            self._open.pop((topic, partition), None)
        removed = remove_leftovers(self.fs, self.product_dir(topic), partitions)
        if removed:
            log.info("removed %d leftover file(s) of an interrupted write or compaction: %s", len(removed),
                     ", ".join(removed))
        self._assigned.update((topic, p) for p in partitions)
        return {p: o for p, o in written_offsets(self.fs, self.product_dir(topic)).items() if p in partitions}

    def columns_for(self, record: SinkRecord) -> list[FieldColumn]:
        shape_key = (record.topic, record.schema_id or 0)
        if shape_key not in self._shapes:
            entity = self.entity_schema(record.topic, record.schema_id)
            self._shapes[shape_key] = entity_columns(entity, self.policies[record.topic])
        return self._shapes[shape_key]

    def prepare(self, record: SinkRecord) -> ParquetRow:
        kafka_ts = from_epoch_ms(record.timestamp_ms or 0)
        meta = {"_key": record.key, "_kafka_partition": record.partition, "_kafka_offset": record.offset}
        if record.value is None:
            columns = self.columns_for(record)
            row = {c.name: None for c in columns} | meta | {"_op": TOMBSTONE_OP, "_event_id": None, "_ts": kafka_ts,
                                                            "_deleted": True}
            return ParquetRow(record.topic, record.partition, record.offset, kafka_ts.date(), columns, row)
        value = record.value
        op, entity = op_and_entity(value)
        columns = self.columns_for(record)
        row = entity_values(entity, columns, self.policies[record.topic])
        for c in columns:
            if c.kind == "json" and row[c.name] is not None:
                row[c.name] = json.dumps(row[c.name], default=str)
        ts = value.get("ts_ms") or kafka_ts
        row |= meta | {"_op": op, "_event_id": event_id_of(value), "_ts": ts,
                       "_deleted": op == "d"}
        return ParquetRow(record.topic, record.partition, record.offset, ts.date(), columns, row)

    # -- rolling files -----------------------------------------------------------------
    def write_batch(self, batch: Batch) -> None:
        """Add the batch's rows to the open files; write the files it finished.

        Staged on copies: the open files change only once every finished file is on disk,
        so a retried call after a failed write does the same again."""
        staged, finished = dict(self._open), []
        for tp, run in self._runs(batch):
            table = self._table(run)
            current = staged.get(tp)
            if current is not None and not current.fits(run[0].day, table.schema):
                finished.append(staged.pop(tp).through(run[0].offset - 1))
                current = None
            last = run[-1].offset
            staged[tp] = current.add(table, last) if current else OpenFile.start(*tp, run[0].day, table, run[0].offset, last)
            if staged[tp].nbytes >= self.roll_bytes:
                finished.append(staged.pop(tp))
        for tp, next_offset in batch.next_offsets.items():
            if tp in staged:
                staged[tp] = staged[tp].through(next_offset - 1)
        for open_file in finished:
            self._write(open_file)
        self._open = staged
        self._show_buffered()

    def durable_offsets(self, batch: Batch) -> dict[TopicPartitionKey, int]:
        """Rows in open files are not on disk yet: tell Kafka only what the files hold."""
        return {tp: (self._open[tp].first if tp in self._open else o) for tp, o in batch.next_offsets.items()}

    def on_tick(self) -> None:
        """Write files that are ``roll_seconds`` old; compact days that are over once partitions
        are assigned, then every ``compact_seconds``."""
        for tp in [tp for tp, f in self._open.items() if f.age() >= self.roll_seconds]:
            open_file = self._open[tp]
            self.retrying(lambda f=open_file: self._write(f))
            del self._open[tp]
            self.commit_offsets({tp: open_file.last + 1})
        self._show_buffered()
        due = self._last_compaction is None or time.monotonic() - self._last_compaction >= self.compact_seconds
        if self.compact_seconds and self._assigned and due:
            self._last_compaction = time.monotonic()
            try:
                self.compact()
            except Exception as exc:  # noqa: BLE001 - housekeeping: the files stay as they were, try again later
                log.warning("compaction failed, will try again in %.0fs: %s", self.compact_seconds, exc)

    def flush(self, stopping: bool = False) -> None:
        super().flush(stopping)
        if stopping:
            self.finish_open_files()

    def finish_open_files(self) -> None:
        """Write every open file (a clean stop): nothing is left to read again."""
        try:
            for tp, open_file in sorted(self._open.items()):
                self.retrying(lambda f=open_file: self._write(f))
                del self._open[tp]
                self.commit_offsets({tp: open_file.last + 1})
        except SinkStopped:
            log.warning("stopped before every open file was written; their rows will be read again on restart")
        self._show_buffered()

    def partitions_revoked(self, partitions: set[TopicPartitionKey]) -> None:
        """The next owner resumes from the finished files: drop what is open here."""
        for tp in partitions:
            self._open.pop(tp, None)
        self._assigned -= partitions
        self._show_buffered()

    def compact(self, today: date | None = None) -> int:
        """Merge small files of days that are over, for the partitions this sink owns;
        the days with an open file are left alone. Returns the number of files merged away."""
        today = today or datetime.now(timezone.utc).date()
        merged = 0
        for topic in self.products:
            partitions = {p for t, p in self._assigned if t == topic}
            busy = {(f.partition, f.day.isoformat()) for (t, _), f in self._open.items() if t == topic}
            if partitions:
                merged += compact_product(self.fs, self.product_dir(topic), partitions=partitions, before=today,
                                          target_bytes=self.roll_bytes, skip=busy)
        return merged

    def _runs(self, batch: Batch) -> list[tuple[TopicPartitionKey, list[ParquetRow]]]:
        """Per partition, in offset order, runs of rows of the same day and columns."""
        by_tp: dict[TopicPartitionKey, list[ParquetRow]] = {}
        for item in batch.items:
            by_tp.setdefault((item.topic, item.partition), []).append(item)
        runs = []
        for tp, items in by_tp.items():
            items.sort(key=lambda i: i.offset)
            current: list[ParquetRow] = []
            for item in items:
                if current and (current[-1].day != item.day or current[-1].columns is not item.columns):
                    runs.append((tp, current))
                    current = []
                current.append(item)
            runs.append((tp, current))
        return runs

    @staticmethod
    def _table(run: list[ParquetRow]) -> pa.Table:
        fields = [pa.field(c.name, arrow_type(c)) for c in run[0].columns]
        return pa.Table.from_pylist([i.row for i in run], schema=pa.schema([*fields, *META_FIELDS]))

    def _write(self, open_file: OpenFile) -> None:
        write_open_file(self.fs, self.product_dir(open_file.topic), open_file)
        self.files_written += 1
        SINK_ROWS.labels(self.group, open_file.topic).inc(open_file.rows)

    def _show_buffered(self) -> None:
        """``sink_buffered_rows``: rows read but in no written file yet (not counted as sunk)."""
        per_topic = dict.fromkeys(self.products, 0)
        for (topic, _), open_file in self._open.items():
            per_topic[topic] = per_topic.get(topic, 0) + open_file.rows
        for topic, rows in per_topic.items():
            SINK_BUFFERED_ROWS.labels(self.group, topic).set(rows)

