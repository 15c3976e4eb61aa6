"""Writing a batch of rows with INSERT ... ON CONFLICT: executemany, or COPY on PostgreSQL.

On PostgreSQL the rows are streamed with ``COPY`` into a temporary staging table (one per
target table and column set, emptied at commit) and moved with a single
``INSERT ... SELECT ... ON CONFLICT``: one round trip per batch instead of one statement
per row, which is what lets the sink keep up with a bare bulk insert. Everything happens on
the caller's connection, so it stays inside the transaction that also stores the offsets.
Other databases (SQLite) get the same statement through ``executemany``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import JSON, Column, Connection, MetaData, Table, select
from sqlalchemy.dialects.postgresql import Insert as PgInsert

from dataplatform.sinks.sql.upsert import dialect_insert

OnConflict = Callable[[Any], Any]   # (dialect insert) -> the same insert with its ON CONFLICT clause


def insert_rows(conn: Connection, table: Table, rows: list[dict[str, Any]], on_conflict: OnConflict) -> int:
    """Insert ``rows`` (dicts by column name; missing columns are NULL) into ``table``; the
    number of rows inserted or updated (not those the ON CONFLICT clause skipped)."""
    if not rows:
        return 0
    names = [c.name for c in table.c]
    if conn.dialect.name == "postgresql":
        return _copy_insert(conn, table, names, rows, on_conflict)
    return conn.execute(on_conflict(dialect_insert(conn.dialect, table)).execution_options(preserve_rowcount=True),
                        [{n: r.get(n) for n in names} for r in rows]).rowcount


_STAGES: dict[tuple[str | None, str, tuple[str, ...]], Table] = {}


def _stage_for(table: Table, names: list[str]) -> Table:
    """The staging table's description (a new column set, after evolution, gets a new one)."""
    key = (table.schema, table.name, tuple(names))
    stage = _STAGES.get(key)
    if stage is None:
        digest = hashlib.sha1(repr(key).encode()).hexdigest()[:10]
        stage = Table(f"_stage_{digest}", MetaData(), *[Column(c.name, c.type) for c in table.c])
        _STAGES[key] = stage
    return stage


def _copy_insert(conn: Connection, table: Table, names: list[str], rows: list[dict[str, Any]],
                 on_conflict: OnConflict) -> int:
    stage = _stage_for(table, names)
    preparer = conn.dialect.identifier_preparer
    target = preparer.format_table(table)
    quoted = ", ".join(preparer.quote(n) for n in names)
    conn.exec_driver_sql(f'CREATE TEMPORARY TABLE IF NOT EXISTS "{stage.name}" '
                         f"(LIKE {target} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
    json_columns = {i for i, c in enumerate(table.c) if isinstance(c.type, JSON)}
    cursor = conn.connection.driver_connection.cursor()
    try:
        with cursor.copy(f'COPY "{stage.name}" ({quoted}) FROM STDIN') as copy:
            for row in rows:
                values = [row.get(n) for n in names]
                for i in json_columns:
                    if values[i] is not None:
                        values[i] = json.dumps(values[i], default=str)
                copy.write_row(values)
    finally:
        cursor.close()
    statement: PgInsert = dialect_insert(conn.dialect, table).from_select(names, select(*stage.c))
    return conn.execute(on_conflict(statement).execution_options(preserve_rowcount=True)).rowcount
