"""The Parquet sink's files on disk (or any fsspec store): names, listing, checkpoint, clean-up.

``<root>/<product>/date=YYYY-MM-DD/part-<partition>-<first>-<last>.parquet`` holds rows of
one Kafka partition with offsets ``first..last`` whose event date is that day. Files are
written under a hidden temporary name (``.part-<partition>-<first>.<random>.tmp``) and
renamed, so a reader never sees half a file and the names are the sink's checkpoint: it
resumes each partition after the largest ``last``.

Compaction replaces several files of one day and partition by one whose range spans
theirs; a crash between writing it and deleting them leaves files whose range lies inside
another's in the same folder. :func:`remove_leftovers` deletes those (and stale temporary
files), so a restart never keeps a row twice.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import fsspec
import pyarrow.parquet as pq

FILE_PATTERN = re.compile(r"date=(\d{4}-\d{2}-\d{2})/part-(\d+)-(\d+)-(\d+)\.parquet$")
TEMP_PATTERN = re.compile(r"/\.part-(\d+)-\d+\.[0-9a-f]+\.tmp$")


def product_dir(root: str, product_name: str) -> str:
    return f"{root.rstrip('/')}/{product_name}"


def product_glob(root: str, product_name: str) -> str:
    """What an analyst reads: every finished file of the product (temporary files excluded)."""
    return f"{product_dir(root, product_name)}/date=*/part-*.parquet"


def date_dir(root_of_product: str, day: str) -> str:
    return f"{root_of_product}/date={day}"


def file_name(partition: int, first: int, last: int) -> str:
    return f"part-{partition}-{first}-{last}.parquet"


def temporary_path(folder: str, partition: int, first: int) -> str:
    return f"{folder}/.part-{partition}-{first}.{uuid.uuid4().hex}.tmp"


@dataclass(frozen=True)
class PartFile:
    path: str
    day: str
    partition: int
    first: int
    last: int
    size: int

    def covers(self, other: "PartFile") -> bool:
        """Whether this file's range holds ``other``'s (same day and partition, another file)."""
        return (self.path != other.path and self.day == other.day and self.partition == other.partition
                and self.first <= other.first and other.last <= self.last)


def list_files(fs: fsspec.AbstractFileSystem, directory: str) -> list[PartFile]:
    """Every finished file under one product's folder, in (partition, first offset) order."""
    found = fs.glob(f"{directory}/date=*/part-*.parquet", detail=True)
    files = []
    for path, info in found.items():
        match = FILE_PATTERN.search(path)
        if match:
            files.append(PartFile(path, match.group(1), int(match.group(2)), int(match.group(3)),
                                  int(match.group(4)), int(info.get("size") or 0)))
    return sorted(files, key=lambda f: (f.partition, f.first, -f.last))


def written_offsets(fs: fsspec.AbstractFileSystem, directory: str) -> dict[int, int]:
    """Next offset per partition derived from the file names under one product's folder."""
    offsets: dict[int, int] = {}
    for f in list_files(fs, directory):
        offsets[f.partition] = max(offsets.get(f.partition, 0), f.last + 1)
    return offsets


def remove_leftovers(fs: fsspec.AbstractFileSystem, directory: str, partitions: Iterable[int]) -> list[str]:
    """Delete what a crash left behind for these partitions: temporary files, and files
    that an interrupted compaction had already merged into a wider one. Returns the paths."""
    wanted = set(partitions)
    removed = [p for p in fs.glob(f"{directory}/date=*/.part-*.tmp")
               if (m := TEMP_PATTERN.search(p)) and int(m.group(1)) in wanted]
    files = [f for f in list_files(fs, directory) if f.partition in wanted]
    removed += [f.path for f in files if any(other.covers(f) for other in files)]
    for path in removed:
        try:
            fs.rm(path)
        except FileNotFoundError:
            pass
    return removed


@dataclass
class PartitionFiles:
    partition: int
    files: int
    rows: int
    bytes: int
    days: int


def partition_stats(fs: fsspec.AbstractFileSystem, directory: str) -> dict[int, PartitionFiles]:
    """Files, rows (from each file's footer), bytes and days per partition."""
    stats: dict[int, PartitionFiles] = {}
    days: dict[int, set[str]] = {}
    for f in list_files(fs, directory):
        s = stats.setdefault(f.partition, PartitionFiles(f.partition, 0, 0, 0, 0))
        with fs.open(f.path, "rb") as handle:
            s.rows += pq.ParquetFile(handle).metadata.num_rows
        s.files, s.bytes = s.files + 1, s.bytes + f.size
        days.setdefault(f.partition, set()).add(f.day)
    for partition, s in stats.items():
        s.days = len(days[partition])
    return stats
