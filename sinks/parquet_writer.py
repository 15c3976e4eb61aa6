"""Rolling Parquet files: rows of one partition and day gathered until the file is big or
old enough, then written in one go under a temporary name and renamed.

An :class:`OpenFile` is immutable: adding rows returns a new one. The sink stages a batch
on copies and keeps them only once every file the batch finished is on disk, so a write
that fails and is retried stages the same files again (same names, same rows): nothing is
written twice and nothing is skipped. Rows still in an open file are not durable; after a
crash they are read again from Kafka, since the checkpoint is the finished files' names.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import date

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from dataplatform.sinks.parquet_files import date_dir, file_name, temporary_path

ROW_GROUP_ROWS = 128 * 1024


@dataclass(frozen=True)
class OpenFile:
    """Rows of offsets ``first..last`` of one partition and day, not yet on disk."""

    topic: str
    partition: int
    day: date
    schema: pa.Schema
    first: int
    last: int
    tables: tuple[pa.Table, ...]
    opened_at: float

    @classmethod
    def start(cls, topic: str, partition: int, day: date, table: pa.Table, first: int, last: int) -> "OpenFile":
        return cls(topic, partition, day, table.schema, first, last, (table,), time.monotonic())

    @property
    def rows(self) -> int:
        return sum(t.num_rows for t in self.tables)

    def fits(self, day: date, schema: pa.Schema) -> bool:
        return self.day == day and self.schema.equals(schema)

    def add(self, table: pa.Table, last: int) -> "OpenFile":
        return replace(self, tables=(*self.tables, table), last=last)

    def through(self, last: int) -> "OpenFile":
        """The same rows, covering offsets up to ``last`` (records after the rows that were
        dead-lettered belong to the file's range, so they are not read again)."""
        return replace(self, last=max(self.last, last))

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tables)

    @property
    def rows(self) -> int:
        return sum(t.num_rows for t in self.tables)

    def age(self) -> float:
        return time.monotonic() - self.opened_at


def write_atomically(fs: fsspec.AbstractFileSystem, product_dir: str, day: str, partition: int, first: int,
                     last: int, table: pa.Table) -> str:
    """Write ``table`` as ``part-<partition>-<first>-<last>.parquet`` of that day: under a
    hidden temporary name first, then renamed, so readers see the whole file or none.
    Writing the same file again replaces it with the same content."""
    folder = date_dir(product_dir, day)
    fs.makedirs(folder, exist_ok=True)
    temporary = temporary_path(folder, partition, first)
    final = f"{folder}/{file_name(partition, first, last)}"
    try:
        with fs.open(temporary, "wb") as f:
            pq.write_table(table, f, row_group_size=ROW_GROUP_ROWS, compression="zstd")
        fs.mv(temporary, final)
    except BaseException:
        if fs.exists(temporary):
            fs.rm(temporary)
        raise
    return final


def write_open_file(fs: fsspec.AbstractFileSystem, product_dir: str, open_file: OpenFile) -> str:
    table = pa.concat_tables(open_file.tables).combine_chunks()
    return write_atomically(fs, product_dir, open_file.day.isoformat(), open_file.partition, open_file.first,
                            open_file.last, table)
