"""The ``sink_offsets`` table: where each SQL sink group resumes, kept with the rows.

The next offset of every (group, topic, partition) is written in the same database
transaction as the rows it covers. After a crash the sink seeks to these offsets, so a
batch is either fully in the tables with its offsets or not at all: no loss, no duplicate.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import BigInteger, Connection, DateTime, Engine, Integer, MetaData, String, Table, Text, select
from sqlalchemy import Column
from sqlalchemy import func

from dataplatform.sinks.sql.upsert import dialect_insert

OFFSETS_TABLE = "sink_offsets"


def offsets_table(metadata: MetaData) -> Table:
    if OFFSETS_TABLE in metadata.tables:
        return metadata.tables[OFFSETS_TABLE]
    return Table(
        OFFSETS_TABLE, metadata,
        Column("group_id", String(255), primary_key=True),
        Column("topic", String(255), primary_key=True),
        Column("partition", Integer, primary_key=True, autoincrement=False),
        Column("next_offset", BigInteger, nullable=False),
        Column("rows_written", BigInteger, nullable=False, default=0),
        Column("last_error", Text, nullable=True),
        Column("updated_at", DateTime(timezone=True), nullable=False),
    )


def ensure_offsets_table(engine: Engine, metadata: MetaData) -> Table:
    table = offsets_table(metadata)
    try:
        table.create(engine, checkfirst=True)
    except Exception:  # noqa: BLE001 - created by another instance at the same moment
        from sqlalchemy import inspect

        if not inspect(engine).has_table(OFFSETS_TABLE, schema=metadata.schema):
            raise
    return table


def load_offsets(conn: Connection, table: Table, group: str, topic: str, partitions: list[int]) -> dict[int, int]:
    rows = conn.execute(select(table.c.partition, table.c.next_offset).where(
        table.c.group_id == group, table.c.topic == topic, table.c.partition.in_(partitions)))
    return {int(p): int(o) for p, o in rows}


def save_offsets(conn: Connection, table: Table, group: str, next_offsets: dict[tuple[str, int], int],
                 rows: dict[tuple[str, int], int], errors: dict[tuple[str, int], str]) -> None:
    """Move each partition's next offset forward and add the rows written (same transaction as the rows)."""
    if not next_offsets:
        return
    now = datetime.now(timezone.utc)
    values = [{"group_id": group, "topic": t, "partition": p, "next_offset": o, "rows_written": rows.get((t, p), 0),
               "last_error": errors.get((t, p)), "updated_at": now} for (t, p), o in next_offsets.items()]
    ins = dialect_insert(conn.dialect, table)
    stmt = ins.on_conflict_do_update(
        index_elements=["group_id", "topic", "partition"],
        set_={"next_offset": ins.excluded.next_offset,
              "rows_written": table.c.rows_written + ins.excluded.rows_written,
              "last_error": func.coalesce(ins.excluded.last_error, table.c.last_error),
              "updated_at": ins.excluded.updated_at},
    )
    conn.execute(stmt, values)


def all_offsets(conn: Connection, table: Table, group: str | None = None) -> list[dict]:
    query = select(table).order_by(table.c.group_id, table.c.topic, table.c.partition)
    if group:
        query = query.where(table.c.group_id == group)
    return [dict(row._mapping) for row in conn.execute(query)]
