"""One commit of the sink to one table: new rows and the group's offsets in one snapshot.

A commit is idempotent, so the sink may repeat it after any failure or crash:

1. load the table's current metadata and the offsets its newest checkpoint holds;
2. keep only the rows at or past those offsets (what an earlier, interrupted or
   unacknowledged attempt already committed is not written again; nothing at all when
   the table already has the whole batch);
3. write the data files and commit them with the new offsets in the snapshot summary,
   as one catalog commit.

A commit that loses a race with another writer (``CommitFailedException``: the table
moved on since step 1) starts again at step 1 on the new metadata, so the offsets it
merges and the rows it keeps are always those of the table it commits to. Files written
by an attempt that did not commit never join the table; the orphan-file removal of
:mod:`.maintenance` deletes them later.

The history table appends. The current-state table applies the rows in offset order,
each key's last event winning (a delete or a tombstone removes the row): new keys are
appended; a batch that changes or deletes keys the table has rewrites it as one file
(copy-on-write, as pyiceberg writes no delete files), in the same single commit.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.io.pyarrow import schema_to_pyarrow
from pyiceberg.table import Table, Transaction

from dataplatform.sinks.iceberg.offsets import Offsets, advanced, snapshot_properties, stored_offsets
from dataplatform.sinks.iceberg.schema import KEY
from dataplatform.sinks.records import TopicPartitionKey
from dataplatform.crash_points import crash_point

log = logging.getLogger(__name__)
CONFLICT_ATTEMPTS = 10


class CommitConflict(RuntimeError):
    """Lost the race to commit on every attempt: waited out like an unreachable catalog."""


@dataclass(slots=True)
class IcebergRow:
    """One change event as the sink writes it (``row`` holds the table's columns)."""

    topic: str
    partition: int
    offset: int
    key: str | None
    deleted: bool
    row: dict[str, Any]


@dataclass
class TableCommitter:
    """Commits rows of one group to one table (history: appends; else current state)."""

    catalog: Catalog
    identifier: tuple[str, str]
    group: str
    history: bool
    commits: int = 0
    files_added: int = 0

    @property
    def name(self) -> str:
        return ".".join(self.identifier)

    def load(self) -> Table:
        return self.catalog.load_table(self.identifier)

    def offsets(self) -> Offsets:
        return stored_offsets(self.load(), self.group)

    def commit(self, rows: Sequence[IcebergRow], next_offsets: Mapping[TopicPartitionKey, int]) -> Offsets:
        """Commit what the table lacks of ``rows``, with ``next_offsets``; the table's offsets after."""
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            table = self.load()
            stored = stored_offsets(table, self.group)
            moved = advanced(stored, next_offsets)
            if not moved:
                return stored   # the table has the whole batch already
            fresh = [r for r in rows if r.offset >= stored.get((r.topic, r.partition), 0)]
            properties = snapshot_properties(self.group, stored, moved)
            try:
                with table.transaction() as txn:
                    if self.history:
                        txn.append(self._arrow(table, [r.row for r in fresh]), snapshot_properties=properties)
                        crash_point("iceberg.history-files-written")
                    else:
                        self._apply(txn, table, fresh, properties)
                        crash_point("iceberg.current-files-written")
            except CommitFailedException as exc:
                log.info("commit to %s lost a race with another writer (attempt %d): %s; retrying on the new "
                         "metadata", self.name, attempt, exc)
                continue
            self.commits += 1
            summary = table.current_snapshot().summary if table.current_snapshot() else None
            self.files_added += int((summary and summary["added-data-files"]) or 0)
            return {**stored, **moved}
        raise CommitConflict(f"{self.name}: {CONFLICT_ATTEMPTS} commits in a row lost a race with other writers")

    @staticmethod
    def _arrow(table: Table, rows: list[dict[str, Any]]) -> pa.Table:
        return pa.Table.from_pylist(rows, schema=schema_to_pyarrow(table.schema(), include_field_ids=False))

    def _apply(self, txn: Transaction, table: Table, rows: Sequence[IcebergRow], properties: dict[str, str]) -> None:
        """Each key's last event wins: its row replaced, or removed by a delete. Keys the table
        does not have yet are appended; once the batch touches a key it has, the table is
        rewritten as one file without the batch's keys plus their new rows (pyiceberg writes
        no delete files, so a delete rewrites the files holding the key anyway)."""
        final: dict[str, dict[str, Any] | None] = {}
        for r in sorted(rows, key=lambda r: (r.topic, r.partition, r.offset)):
            final[r.key] = None if r.deleted else r.row
        keys = pa.array(list(final), pa.string())
        new = self._arrow(table, [row for row in final.values() if row is not None])
        existing_keys = table.scan(selected_fields=(KEY,)).to_arrow()[KEY] if table.current_snapshot() else None
        if existing_keys is None or not pc.any(pc.is_in(existing_keys, value_set=keys)).as_py():
            txn.append(new, snapshot_properties=properties)
            return
        existing = table.scan().to_arrow()
        kept = existing.filter(pc.invert(pc.is_in(existing[KEY], value_set=keys)))
        txn.overwrite(pa.concat_tables([kept.select(new.schema.names).cast(new.schema), new]),
                      snapshot_properties=properties)
