"""The SQL sink: data product topics as tables, written in batches with their offsets.

``upsert`` keeps the current state, one row per record key: creates and updates replace
the row, a delete event or a tombstone removes it (``--delete-mode soft``: keeps it with
``_deleted`` true). ``append`` keeps the history, one row per event, unique on
(partition, offset) so a replay cannot add a row twice, and on the event id so an event
re-sent at a later offset is skipped, even after a restart (the repeat filter in memory
only spares the work). Either way the batch's rows and its next offsets (``sink_offsets``)
are committed in one transaction.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, Table, create_engine, delete, event, func, select, update
from sqlalchemy.exc import DBAPIError, OperationalError

from dataplatform.config import Settings
from dataplatform.products.envelope import event_id_of, from_epoch_ms
from dataplatform.products.product import DataProduct
from dataplatform.sinks.base import BatchingSink
from dataplatform.sinks.crash_points import crash_point
from dataplatform.sinks.columns import FieldColumn, MappingError, change_of, entity_columns, entity_values
from dataplatform.sinks.records import Batch, SinkRecord
from dataplatform.sinks.sql.bulk import insert_rows
from dataplatform.sinks.sql.offsets import ensure_offsets_table, load_offsets, save_offsets
from dataplatform.sinks.sql.tables import APPEND, KEY, METADATA_COLUMNS, UPSERT, TableManager, table_name

log = logging.getLogger(__name__)
HARD, SOFT = "hard", "soft"
TOMBSTONE_OP = "t"


@dataclass
class PreparedRow:
    topic: str
    key: str
    action: str  # "upsert" | "delete" | "tombstone"
    row: dict[str, Any]


def make_engine(url: str, sqlite_timeout: float = 5.0) -> Engine:
    """An engine tuned for batch writes; SQLite in WAL mode so readers never block the sink."""
    json_dumps = lambda v: json.dumps(v, default=str)  # noqa: E731 - Avro values hold dates, decimals
    if url.startswith("sqlite"):
        engine = create_engine(url, json_serializer=json_dumps, connect_args={"timeout": sqlite_timeout})

        @event.listens_for(engine, "connect")
        def _wal(dbapi_conn, _record) -> None:  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()
        return engine
    return create_engine(url, json_serializer=json_dumps, pool_pre_ping=True, insertmanyvalues_page_size=2000)


class SqlSink(BatchingSink):
    """Keep data product topics in SQL tables; ``run(stop_event)`` until stopped."""

    default_group = "dataplatform-sink-sql"

    def __init__(self, settings: Settings | None = None, *, topics: Sequence[str] = (),
                 products: Sequence[DataProduct] = (), mode: str = UPSERT, database_url: str | None = None,
                 delete_mode: str = HARD, engine: Engine | None = None,
                 db_schema: str | None = None, **kwargs: Any) -> None:
        super().__init__(settings, topics=topics, products=products, **kwargs)
        if mode not in (UPSERT, APPEND):
            raise ValueError(f"mode must be {UPSERT} or {APPEND}, not {mode!r}")
        if delete_mode not in (HARD, SOFT):
            raise ValueError(f"delete mode must be {HARD} or {SOFT}, not {delete_mode!r}")
        self.mode, self.delete_mode = mode, delete_mode
        self.engine = engine or make_engine(database_url or self.settings.effective_database_url)
        self.tables = TableManager(self.engine, db_schema)
        self.metadata = MetaData(schema=db_schema)
        self._offsets: Table | None = None
        self._shapes: dict[tuple[str, int | None], list[FieldColumn]] = {}

    def table_name(self, topic: str) -> str:
        return table_name(topic, self.mode)

    # -- store -----------------------------------------------------------------
    def open(self) -> None:
        self._offsets = ensure_offsets_table(self.engine, self.metadata)
        for topic, product in self.products.items():
            self._shapes[(topic, None)] = entity_columns(product.entity_schema, self.policies[topic])
            self.tables.ensure(self.table_name(topic), self.mode, self._shapes[(topic, None)])

    def close(self) -> None:
        self.engine.dispose()

    def is_transient(self, exc: BaseException) -> bool:
        if isinstance(exc, OperationalError) or (isinstance(exc, DBAPIError) and exc.connection_invalidated):
            return True
        return super().is_transient(exc)

    def stored_offsets(self, topic: str, partitions: list[int]) -> dict[int, int]:
        if self._offsets is None:
            self.open()
        with self.engine.connect() as conn:
            return load_offsets(conn, self._offsets, self.group, topic, partitions)

    # -- records to rows ------------------------------------------------------------
    def columns_for(self, record: SinkRecord) -> list[FieldColumn]:
        """The columns of the schema the record was written with; new fields add table columns."""
        shape_key = (record.topic, record.schema_id)
        if shape_key not in self._shapes:
            columns = entity_columns(self.entity_schema(record.topic, record.schema_id), self.policies[record.topic])
            self.retrying(lambda: self.tables.ensure(self.table_name(record.topic), self.mode, columns))
            self._shapes[shape_key] = columns
        return self._shapes[shape_key]

    def prepare(self, record: SinkRecord) -> PreparedRow:
        if record.value is None:
            if record.key is None:
                raise MappingError("a tombstone without a key")
            ts = from_epoch_ms(record.timestamp_ms) if record.timestamp_ms else None
            return PreparedRow(record.topic, record.key, "tombstone",
                               {KEY: record.key, "_op": TOMBSTONE_OP, "_event_id": None, "_ts": ts, "_deleted": True,
                                "_kafka_partition": record.partition, "_kafka_offset": record.offset})
        value = record.value
        op, entity, key = change_of(value, record.key, record.product)
        row = entity_values(entity, self.columns_for(record), self.policies[record.topic])
        row[KEY], row["_op"], row["_event_id"], row["_ts"], row["_deleted"] = (
            key, op, event_id_of(value), value.get("ts_ms"), op == "d")
        row["_kafka_partition"], row["_kafka_offset"] = record.partition, record.offset
        return PreparedRow(record.topic, key, "delete" if op == "d" else "upsert", row)

    # -- writing ---------------------------------------------------------------------
    def write_batch(self, batch: Batch) -> None:
        by_topic: dict[str, list[PreparedRow]] = {}
        for item in batch.items:
            by_topic.setdefault(item.topic, []).append(item)
        with self.engine.begin() as conn:
            for topic, items in by_topic.items():
                table = self.tables.tables[self.table_name(topic)]
                if self.mode == APPEND:
                    self._append(conn, table, items, batch)
                else:
                    self._upsert(conn, table, items)
            crash_point("batch.written")
            save_offsets(conn, self._offsets, self.group, batch.next_offsets, batch.rows, batch.errors)

    def _append(self, conn: Connection, table: Table, items: list[PreparedRow], batch: Batch) -> None:
        """Insert the events; one whose (partition, offset) or event id is there already is skipped
        (no conflict target: DO NOTHING covers both unique indexes)."""
        inserted = insert_rows(conn, table, [i.row for i in items], lambda ins: ins.on_conflict_do_nothing())
        if inserted < len(items):   # rare: count per partition what went in, for rows_written
            for tp in {(i.topic, i.row["_kafka_partition"]) for i in items}:
                offsets = [i.row["_kafka_offset"] for i in items if (i.topic, i.row["_kafka_partition"]) == tp]
                batch.rows[tp] = conn.execute(select(func.count()).select_from(table).where(
                    table.c._kafka_partition == tp[1], table.c._kafka_offset.between(min(offsets), max(offsets)))
                ).scalar_one()

    def _upsert(self, conn: Connection, table: Table, items: list[PreparedRow]) -> None:
        """Reduce the batch to each key's final state, then delete and upsert in bulk."""
        final: dict[str, dict[str, Any] | None] = {}
        soft_tombstones: dict[str, dict[str, Any]] = {}
        for item in items:
            if item.action == "upsert" or (item.action == "delete" and self.delete_mode == SOFT):
                final[item.key] = item.row
                soft_tombstones.pop(item.key, None)
            elif item.action == "delete" or self.delete_mode == HARD:
                final[item.key] = None
            elif final.get(item.key) is not None:  # soft tombstone after a change in this batch
                final[item.key] = {**final[item.key], "_deleted": True, "_kafka_offset": item.row["_kafka_offset"]}
            else:
                final.pop(item.key, None)
                soft_tombstones[item.key] = item.row
        deletes = [k for k, row in final.items() if row is None]
        upserts = [row for row in final.values() if row is not None]
        if deletes:
            conn.execute(delete(table).where(table.c[KEY].in_(deletes)))
        for key, row in soft_tombstones.items():
            conn.execute(update(table).where(table.c[KEY] == key).values(
                _deleted=True, _kafka_partition=row["_kafka_partition"], _kafka_offset=row["_kafka_offset"]))
        insert_rows(conn, table, upserts, lambda ins: ins.on_conflict_do_update(
            index_elements=[KEY], set_={c.name: ins.excluded[c.name] for c in table.c if c.name != KEY}))


__all__ = ["SqlSink", "PreparedRow", "make_engine", "METADATA_COLUMNS"]
