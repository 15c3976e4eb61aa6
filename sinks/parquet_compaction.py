"""Compaction: fewer, larger Parquet files for days that are over.

Rolling by time still leaves one file per interval (and a new file whenever a late event
arrives for an old day). Once a day is over, its small files of one partition are merged,
in offset order, into files of up to ``target_bytes``: ``part-<p>-<first>-<last>`` where
``first..last`` spans the merged files' ranges, so the sink's checkpoint (the largest
``last``) is unchanged. The merged file is written atomically before its sources are
deleted; a crash in between leaves sources inside the merged file's range, which
:func:`dataplatform.sinks.parquet_files.remove_leftovers` deletes on the next compaction or restart.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from dataplatform.sinks.parquet_files import PartFile, list_files, remove_leftovers
from dataplatform.sinks.parquet_writer import write_atomically

log = logging.getLogger(__name__)


def merge_groups(files: list[PartFile], target_bytes: int) -> list[list[PartFile]]:
    """Consecutive small files of one day and partition, grouped up to ``target_bytes``.
    Only groups of two or more are worth merging; a file of half the target or more stays."""
    groups: list[list[PartFile]] = []
    current: list[PartFile] = []
    for f in sorted(files, key=lambda f: f.first):
        if f.size >= target_bytes // 2:
            groups.append(current)
            current = []
            continue
        if current and sum(x.size for x in current) + f.size > target_bytes:
            groups.append(current)
            current = []
        current.append(f)
    groups.append(current)
    return [g for g in groups if len(g) > 1]


def compact_product(fs: fsspec.AbstractFileSystem, directory: str, *, partitions: Iterable[int] | None = None,
                    before: date, target_bytes: int, skip: set[tuple[int, str]] = frozenset()) -> int:
    """Merge the small files of each (partition, day) before ``before`` under one product's
    folder, except the ``skip`` ones. Returns how many files were merged away."""
    files = list_files(fs, directory)
    wanted = {f.partition for f in files} if partitions is None else set(partitions)
    remove_leftovers(fs, directory, wanted)
    files = list_files(fs, directory)
    by_day: dict[tuple[int, str], list[PartFile]] = {}
    for f in files:
        if f.partition in wanted and f.day < before.isoformat() and (f.partition, f.day) not in skip:
            by_day.setdefault((f.partition, f.day), []).append(f)
    merged = 0
    for group in (g for day_files in by_day.values() for g in merge_groups(day_files, target_bytes)):
        merge(fs, directory, group)
        merged += len(group)
    return merged


def merge(fs: fsspec.AbstractFileSystem, directory: str, group: list[PartFile]) -> str:
    """One file holding the group's rows in offset order, then the group deleted."""
    tables = []
    for f in group:
        with fs.open(f.path, "rb") as handle:
            tables.append(pq.read_table(handle))
    table = pa.concat_tables(tables, promote_options="default")  # a later schema may add columns
    first, last = group[0].first, max(f.last for f in group)
    path = write_atomically(fs, directory, group[0].day, group[0].partition, first, last, table)
    for f in group:
        try:
            fs.rm(f.path)
        except FileNotFoundError:  # compacted by another process meanwhile
            pass
    log.info("compacted %d files of partition %d on %s into %s", len(group), group[0].partition, group[0].day, path)
    return path
