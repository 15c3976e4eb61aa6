"""Keeping a long-lived table small: expire old snapshots, remove files nothing refers to.

Every commit adds a snapshot, so a table written for months would keep every snapshot and
every file they ever referenced. On a schedule the sink therefore

- **expires snapshots** older than the retention (default 7 days, enough to time-travel a
  week back), always keeping the newest few, the current one and the one that carries the
  group's offsets (:mod:`.offsets`), so expiry can never lose the sink's checkpoint;
- **removes orphan files**: files under the table's location that no snapshot, manifest or
  metadata file refers to — data and manifests of a commit that was interrupted (a crash,
  a lost race) or of expired snapshots. pyiceberg has no such operation, so it is done
  here: list the table's ``data/`` and ``metadata/`` folders with the table's own file
  system (local or S3) and delete what is unreferenced and older than a safety age (so a
  commit still being written by another instance is never touched).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

from pyarrow.fs import FileSelector, FileType
from pyiceberg.io.pyarrow import PyArrowFileIO
from pyiceberg.table import Table
from pyiceberg.table.snapshots import ancestors_of

from dataplatform.sinks.iceberg.offsets import checkpoint_snapshot

log = logging.getLogger(__name__)
KEEP_LAST = 5


def expire_snapshots(table: Table, group: str, retention: timedelta, keep_last: int = KEEP_LAST) -> int:
    """Expire snapshots older than ``retention``, except the newest ``keep_last`` of the
    current ancestry and the group's checkpoint. Returns how many were expired."""
    cutoff_ms = int((datetime.now(timezone.utc) - retention).timestamp() * 1000)
    keep = {s.snapshot_id for s in list(ancestors_of(table.current_snapshot(), table.metadata))[:keep_last]}
    checkpoint = checkpoint_snapshot(table, group)
    if checkpoint is not None:
        keep.add(checkpoint.snapshot_id)
    old = [s.snapshot_id for s in table.snapshots() if s.timestamp_ms < cutoff_ms and s.snapshot_id not in keep]
    if old:
        table.maintenance.expire_snapshots().by_ids(old).commit()
        log.info("expired %d snapshot(s) of %s older than %s", len(old), ".".join(table.name()), retention)
    return len(old)


def referenced_files(table: Table) -> set[str]:
    """Every file the table's metadata refers to: metadata files, manifest lists, manifests,
    data and delete files of every snapshot kept, statistics."""
    meta = table.metadata
    files = {table.metadata_location, *(entry.metadata_file for entry in meta.metadata_log)}
    files |= {s.statistics_path for s in meta.statistics} | {s.statistics_path for s in meta.partition_statistics}
    for snapshot in meta.snapshots:
        files.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(table.io):
            files.add(manifest.manifest_path)
            files |= {e.data_file.file_path for e in manifest.fetch_manifest_entry(table.io, discard_deleted=False)}
    return files


def remove_orphan_files(table: Table, older_than: timedelta) -> list[str]:
    """Delete the files under the table's ``data/`` and ``metadata/`` that nothing refers to
    and that are older than ``older_than``; the paths removed."""
    io = table.io if isinstance(table.io, PyArrowFileIO) else PyArrowFileIO(table.io.properties)
    scheme, netloc, root = PyArrowFileIO.parse_location(table.location(), table.io.properties)
    fs = io.fs_by_scheme(scheme, netloc)
    path_of = lambda location: PyArrowFileIO.parse_location(location, table.io.properties)[2]  # noqa: E731
    referenced = {path_of(f) for f in referenced_files(table)}
    cutoff = datetime.now(timezone.utc) - older_than
    removed = []
    for folder in ("data", "metadata"):
        try:
            infos = fs.get_file_info(FileSelector(f"{root.rstrip('/')}/{folder}", recursive=True, allow_not_found=True))
        except FileNotFoundError:
            continue
        for info in infos:
            if info.type != FileType.File or info.path in referenced or info.mtime is None:
                continue
            mtime = info.mtime if info.mtime.tzinfo else info.mtime.replace(tzinfo=timezone.utc)
            if mtime < cutoff:
                fs.delete_file(info.path)
                removed.append(info.path)
    if removed:
        log.info("removed %d orphan file(s) of %s", len(removed), ".".join(table.name()))
    return removed
