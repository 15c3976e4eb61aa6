"""The Parquet sink: every event of a data product as rows in Parquet files, for analysts.

Layout: ``<path>/<product>/date=YYYY-MM-DD/part-<partition>-<firstoffset>-<lastoffset>.parquet``
(the date is the event's ``ts_ms`` in UTC). ``<path>`` is a folder or any fsspec URL.

The file names are the checkpoint. Each file holds a contiguous run of one partition's
offsets, files are written in offset order and appear atomically (written under a hidden
temporary name, then renamed), so on start the sink resumes each partition after the
largest ``lastoffset`` on disk: a crash leaves either the whole file or none, and a
re-run writes no row twice. (A run ending in dead-lettered records includes their
offsets; a batch of nothing but dead letters writes no file and is dead-lettered again
after a crash, which is harmless.)
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from dataplatform.config import Settings
from schemas.product import DataProduct
from sinks.base import Batch, BatchingSink, SinkRecord
from sinks.columns import FieldColumn, MappingError, PersonalDataPolicy, entity_columns, entity_schema_of_envelope, entity_values

FILE_PATTERN = re.compile(r"part-(\d+)-(\d+)-(\d+)\.parquet$")
TOMBSTONE_OP = "t"

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

    def __init__(self, settings: Settings | None = None, *, topics: Sequence[str] = (),
                 products: Sequence[DataProduct] = (), path: str | None = None,
                 allow_personal: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(settings, topics=topics, products=products, **kwargs)
        self.path = str(path or (self.settings.dataplatform_home / "parquet").resolve())
        self.fs, self.root = fsspec.core.url_to_fs(self.path)
        self.policies = {t: self._policy(p, set(allow_personal)) for t, p in self.products.items()}
        self._shapes: dict[tuple[str, int], list[FieldColumn]] = {}

    def _policy(self, product: DataProduct, allowed: set[str]) -> PersonalDataPolicy:
        if product.name not in allowed:
            return PersonalDataPolicy(product.personal_fields)
        secret = self.settings.sink_personal_data_key
        if secret is None or not secret.get_secret_value():
            raise ValueError(f"--allow-personal {product.name} needs SINK_PERSONAL_DATA_KEY to hash personal fields")
        return PersonalDataPolicy(product.personal_fields, secret.get_secret_value().encode("utf-8"))

    def product_dir(self, topic: str) -> str:
        return f"{self.root.rstrip('/')}/{self.products[topic].name}"

    def open(self) -> None:
        self.fs.makedirs(self.root, exist_ok=True)

    def stored_offsets(self, topic: str, partitions: list[int]) -> dict[int, int]:
        """Per partition, one past the largest ``lastoffset`` in the file names."""
        return {p: o for p, o in written_offsets(self.fs, self.product_dir(topic)).items() if p in partitions}

    def columns_for(self, record: SinkRecord) -> list[FieldColumn]:
        shape_key = (record.topic, record.schema_id or 0)
        if shape_key not in self._shapes:
            if record.schema_id is None:
                entity = record.product.entity_schema
            else:
                entity = entity_schema_of_envelope(json.loads(self.registry.get_schema(record.schema_id).schema_str))
            self._shapes[shape_key] = entity_columns(entity, self.policies[record.topic])
        return self._shapes[shape_key]

    def prepare(self, record: SinkRecord) -> ParquetRow:
        kafka_ts = datetime.fromtimestamp((record.timestamp_ms or 0) / 1000, timezone.utc)
        meta = {"_key": record.key, "_kafka_partition": record.partition, "_kafka_offset": record.offset}
        if record.value is None:
            columns = self.columns_for(record)
            row = {c.name: None for c in columns} | meta | {"_op": TOMBSTONE_OP, "_event_id": None, "_ts": kafka_ts,
                                                            "_deleted": True}
            return ParquetRow(record.topic, record.partition, record.offset, kafka_ts.date(), columns, row)
        value = record.value
        op = value.get("op")
        entity = value.get("before") if op == "d" else value.get("after")
        if op not in ("c", "u", "d", "r") or not isinstance(entity, dict):
            raise MappingError(f"change event with op {op!r} has no {'before' if op == 'd' else 'after'} entity")
        columns = self.columns_for(record)
        row = entity_values(entity, columns, self.policies[record.topic])
        for c in columns:
            if c.kind == "json" and row[c.name] is not None:
                row[c.name] = json.dumps(row[c.name], default=str)
        ts = value.get("ts_ms") or kafka_ts
        row |= meta | {"_op": op, "_event_id": (value.get("source") or {}).get("event_id"), "_ts": ts,
                       "_deleted": op == "d"}
        return ParquetRow(record.topic, record.partition, record.offset, ts.date(), columns, row)

    def write_batch(self, batch: Batch) -> None:
        """One file per run of consecutive offsets on the same date, in offset order."""
        by_tp: dict[tuple[str, int], list[ParquetRow]] = {}
        for item in batch.items:
            by_tp.setdefault((item.topic, item.partition), []).append(item)
        for tp, items in by_tp.items():
            items.sort(key=lambda i: i.offset)
            runs: list[list[ParquetRow]] = []
            for item in items:
                if runs and runs[-1][-1].day == item.day:
                    runs[-1].append(item)
                else:
                    runs.append([item])
            for n, run in enumerate(runs):
                last = batch.next_offsets[tp] - 1 if n == len(runs) - 1 else runs[n + 1][0].offset - 1
                self._write_file(run, last)

    def _write_file(self, run: list[ParquetRow], last_offset: int) -> None:
        first = run[0]
        folder = f"{self.product_dir(first.topic)}/date={first.day.isoformat()}"
        name = f"part-{first.partition}-{first.offset}-{last_offset}.parquet"
        fields: dict[str, pa.Field] = {}
        for item in run:
            for c in item.columns:
                fields.setdefault(c.name, pa.field(c.name, arrow_type(c)))
        schema = pa.schema([*fields.values(), *META_FIELDS])
        table = pa.Table.from_pylist([i.row for i in run], schema=schema)
        self.fs.makedirs(folder, exist_ok=True)
        temporary = f"{folder}/.{name}.{uuid.uuid4().hex}.tmp"
        with self.fs.open(temporary, "wb") as f:
            pq.write_table(table, f)
        self.fs.mv(temporary, f"{folder}/{name}")


def written_offsets(fs: fsspec.AbstractFileSystem, product_dir: str) -> dict[int, int]:
    """Next offset per partition derived from the file names under one product's folder."""
    offsets: dict[int, int] = {}
    for path in fs.glob(f"{product_dir}/date=*/part-*.parquet"):
        match = FILE_PATTERN.search(path)
        if match:
            partition, last = int(match.group(1)), int(match.group(3))
            offsets[partition] = max(offsets.get(partition, 0), last + 1)
    return offsets
