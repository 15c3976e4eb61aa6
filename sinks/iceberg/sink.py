"""The Iceberg sink: every data product as two Apache Iceberg tables, exactly once.

Per product version (:mod:`.names`) a **history** table (every change event with the
sink's metadata columns, partitioned by day of the event time) and a **current-state**
table (one row per key; deletes and tombstones remove it). Any pyiceberg catalog (the
embedded SQL catalog, a SQL catalog on PostgreSQL, a REST catalog such as Glue's) and any
file system pyiceberg writes to (local, S3): the sink only asks :mod:`.catalog` for it.

**Batching.** Rows gather in memory across the consume loop's batches and are committed
every ``commit_seconds`` (default 5 minutes) or once ``commit_rows`` are held, and on a
clean stop: few snapshots, files of a useful size. Until then Kafka is not told the rows
are written, so lag tools show them as pending.

**Exactly once.** Each table is its own checkpoint (:mod:`.offsets`): a commit's files
and the group's next offsets land in one snapshot, and a commit only writes the rows past
the table's offsets (:mod:`.commits`). The history table is committed first, then the
current-state table; on assignment the sink resumes each partition from the smaller of
the two tables' offsets, so after a crash between the two commits the rows are read
again, the history table skips them and the current-state table applies them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import CommitFailedException, CommitStateUnknownException, ServerError, ServiceUnavailableError
from sqlalchemy.exc import OperationalError

from dataplatform.config import Settings
from dataplatform.products.envelope import event_id_of, from_epoch_ms
from dataplatform.products.product import DataProduct
from dataplatform.sinks.base import BatchingSink
from dataplatform.sinks.columns import MappingError, change_of
from dataplatform.sinks.iceberg.catalog import open_catalog
from dataplatform.sinks.iceberg.commits import CommitConflict, IcebergRow, TableCommitter
from dataplatform.sinks.iceberg.maintenance import expire_snapshots, remove_orphan_files
from dataplatform.sinks.iceberg.names import table_names
from dataplatform.sinks.iceberg.schema import EntityShape
from dataplatform.sinks.iceberg.tables import ensure_table, evolve
from dataplatform.sinks.records import Batch, SinkRecord, TopicPartitionKey
from dataplatform.sinks.retrying import SinkStopped
from dataplatform.crash_points import arm_from_environment, crash_point

log = logging.getLogger(__name__)
TOMBSTONE_OP = "t"
# worth waiting out, besides OSError (an object store or REST catalog out of reach): a lost
# commit race, a commit whose outcome is unknown (the retry re-reads the table's offsets),
# a catalog answering 5xx, a SQL catalog's database down
TRANSIENT = (CommitConflict, CommitFailedException, CommitStateUnknownException, ServerError, ServiceUnavailableError,
             OperationalError)


class IcebergSink(BatchingSink):
    """Keep data product topics as Iceberg tables; ``run(stop_event)`` until stopped."""

    default_group = "dataplatform-sink-iceberg"

    def __init__(self, settings: Settings | None = None, *, topics: Sequence[str] = (),
                 products: Sequence[DataProduct] = (), catalog: Catalog | None = None,
                 commit_seconds: float | None = None,
                 commit_rows: int | None = None, maintenance_seconds: float | None = None,
                 snapshot_retention: timedelta | None = None, orphan_age: timedelta = timedelta(hours=1),
                 **kwargs: Any) -> None:
        super().__init__(settings, topics=topics, products=products, **kwargs)
        s = self.settings
        pick = lambda given, default: default if given is None else given  # noqa: E731
        self.commit_seconds = float(pick(commit_seconds, s.iceberg_commit_seconds))
        self.commit_rows = int(pick(commit_rows, s.iceberg_commit_rows))
        self.maintenance_seconds = float(pick(maintenance_seconds, s.iceberg_maintenance_seconds))
        self.snapshot_retention = pick(snapshot_retention, timedelta(hours=s.iceberg_snapshot_retention_hours))
        self.orphan_age = orphan_age
        if self.commit_seconds <= 0 or self.commit_rows <= 0 or self.maintenance_seconds < 0:
            raise ValueError("the commit interval and rows must be above 0, the maintenance interval 0 (off) or more")
        self._catalog = catalog
        self._shapes: dict[tuple[str, int | None], EntityShape] = {}
        self.history: dict[str, TableCommitter] = {}
        self.current: dict[str, TableCommitter] = {}
        self._held: list[IcebergRow] = []
        self._held_offsets: dict[TopicPartitionKey, int] = {}
        self._held_since: float | None = None
        self._committed: dict[TopicPartitionKey, int] = {}   # what both tables hold, per partition
        self._last_maintenance = time.monotonic()

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = open_catalog(self.settings)
        return self._catalog

    # -- store -----------------------------------------------------------------------------
    def open(self) -> None:
        arm_from_environment()   # a crash test's plan, if any
        for topic, product in self.products.items():
            names, shape = table_names(product), self.shape(topic, None)
            ensure_table(self.catalog, names.history_identifier, shape.schema(history=True), True,
                         f"{product.topic}: every change event")
            ensure_table(self.catalog, names.current_identifier, shape.schema(history=False), False,
                         f"{product.topic}: one row per key, as it is now")
            self.history[topic] = TableCommitter(self.catalog, names.history_identifier, self.group, history=True)
            self.current[topic] = TableCommitter(self.catalog, names.current_identifier, self.group, history=False)

    def is_transient(self, exc: BaseException) -> bool:
        return isinstance(exc, TRANSIENT) or super().is_transient(exc)

    def stored_offsets(self, topic: str, partitions: list[int]) -> dict[int, int]:
        """Per partition, the smaller of the two tables' offsets (a partition one table lacks:
        from the beginning); what was held of these partitions is dropped."""
        self.partitions_revoked({(topic, p) for p in partitions})
        history, current = self.history[topic].offsets(), self.current[topic].offsets()
        out = {}
        for p in partitions:
            if (topic, p) in history and (topic, p) in current:
                out[p] = self._committed[(topic, p)] = min(history[(topic, p)], current[(topic, p)])
        return out

    # -- records to rows ----------------------------------------------------------------------
    def shape(self, topic: str, schema_id: int | None) -> EntityShape:
        """The shape of the schema a record was written with; a new compatible version's new
        fields are added to both tables first."""
        if (topic, schema_id) not in self._shapes:
            shape = EntityShape(self.entity_schema(topic, schema_id), self.policies[topic])
            if schema_id is not None and topic in self.history:
                for committer, history in ((self.history[topic], True), (self.current[topic], False)):
                    self.retrying(lambda c=committer, h=history: evolve(c.load(), shape.schema(h)))
            self._shapes[(topic, schema_id)] = shape
        return self._shapes[(topic, schema_id)]

    def prepare(self, record: SinkRecord) -> IcebergRow:
        meta = {"_kafka_partition": record.partition, "_kafka_offset": record.offset}
        kafka_ts = from_epoch_ms(record.timestamp_ms or 0)
        if record.value is None:
            if record.key is None:
                raise MappingError("a tombstone without a key")
            row = self.shape(record.topic, record.schema_id).values(None) | meta | {
                "_key": record.key, "_op": TOMBSTONE_OP, "_event_id": None, "_ts": kafka_ts, "_deleted": True}
            return IcebergRow(record.topic, record.partition, record.offset, record.key, True, row)
        value = record.value
        op, entity, key = change_of(value, record.key, record.product)
        row = self.shape(record.topic, record.schema_id).values(entity) | meta | {
            "_key": key, "_op": op, "_event_id": event_id_of(value),
            "_ts": value.get("ts_ms") or kafka_ts, "_deleted": op == "d"}
        return IcebergRow(record.topic, record.partition, record.offset, key, op == "d", row)

    # -- committing --------------------------------------------------------------------------
    def write_batch(self, batch: Batch) -> None:
        """Hold the batch's rows; commit what is held once there are ``commit_rows``. Staged
        on copies, so a retried call after a failed commit does the same again."""
        held, offsets = self._held + batch.items, {**self._held_offsets, **batch.next_offsets}
        since = self._held_since or time.monotonic()
        if len(held) >= self.commit_rows:
            self.commit(held, offsets)
            held, offsets, since = [], {}, None
        self._held, self._held_offsets, self._held_since = held, offsets, since

    def durable_offsets(self, batch: Batch) -> dict[TopicPartitionKey, int]:
        """Held rows are not in the tables yet: tell Kafka only what both tables hold."""
        return {tp: self._committed[tp] for tp in batch.next_offsets if tp in self._committed}

    def commit(self, rows: list[IcebergRow], offsets: dict[TopicPartitionKey, int]) -> None:
        """Per topic: the history table, then the current-state table (see the module's docstring)."""
        for topic in self.products:
            topic_offsets = {tp: o for tp, o in offsets.items() if tp[0] == topic}
            if not topic_offsets:
                continue
            topic_rows = [r for r in rows if r.topic == topic]
            self.history[topic].commit(topic_rows, topic_offsets)
            crash_point("iceberg.history-committed")
            self.current[topic].commit(topic_rows, topic_offsets)
            self._committed.update(topic_offsets)
        crash_point("iceberg.committed")

    def commit_held(self) -> None:
        if not self._held_offsets:
            return
        held, offsets = self._held, self._held_offsets
        self.retrying(lambda: self.commit(held, offsets))
        self._held, self._held_offsets, self._held_since = [], {}, None
        self.commit_offsets(offsets)

    def on_tick(self) -> None:
        """Commit what is ``commit_seconds`` old; table maintenance every ``maintenance_seconds``."""
        if self._held_since is not None and time.monotonic() - self._held_since >= self.commit_seconds:
            self.commit_held()
        if self.maintenance_seconds and time.monotonic() - self._last_maintenance >= self.maintenance_seconds:
            self._last_maintenance = time.monotonic()
            self.maintain()

    def flush(self, stopping: bool = False) -> None:
        super().flush(stopping)
        if stopping:
            try:
                self.commit_held()
            except SinkStopped:
                log.warning("stopped before the held rows were committed; they will be read again on restart")

    def partitions_revoked(self, partitions: set[TopicPartitionKey]) -> None:
        """The next owner resumes from the tables: drop what is held of these partitions."""
        self._held = [r for r in self._held if (r.topic, r.partition) not in partitions]
        self._held_offsets = {tp: o for tp, o in self._held_offsets.items() if tp not in partitions}
        if not self._held_offsets:
            self._held_since = None

    def maintain(self) -> None:
        """Expire old snapshots and remove orphan files of every table (failures only logged:
        housekeeping is tried again next time)."""
        for committer in (*self.history.values(), *self.current.values()):
            try:
                expire_snapshots(committer.load(), self.group, self.snapshot_retention)
                remove_orphan_files(committer.load(), self.orphan_age)
            except Exception as exc:  # noqa: BLE001 - housekeeping: the table is as it was
                log.warning("maintenance of %s failed, will try again in %.0fs: %s", committer.name,
                            self.maintenance_seconds, exc)

    @property
    def snapshots_committed(self) -> int:
        return sum(c.commits for c in (*self.history.values(), *self.current.values()))

