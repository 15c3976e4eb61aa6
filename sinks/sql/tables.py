"""Tables of the SQL sink: names, metadata columns, creation and additive evolution.

Naming: the topic with ``.`` and ``-`` replaced by ``__`` and ``_``:
``hmpps.prison_releases_housing_need.v1`` is kept as ``hmpps__prison_releases_housing_need__v1``
(upsert mode: one row per key) and ``hmpps__prison_releases_housing_need__v1_history``
(append mode: one row per event). Names longer than PostgreSQL's 63 characters are cut and
end with a short hash of the full name.

Evolution only ever adds nullable columns: a compatible schema version that adds a field
adds a column; nothing is dropped or retyped, so no row is lost.

A history table is unique on the event id too (a partial unique index over the rows that
have one; tombstones have none), so an event re-sent at a later offset is skipped by the
database itself, whether or not the sink restarted since it wrote the first copy
(:mod:`.history_index` adds the index to tables created before it existed).
"""

from __future__ import annotations

import logging

from sqlalchemy import (BigInteger, Boolean, Column, DateTime, Engine, Integer, MetaData, String, Table,
                        inspect, text)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.schema import CreateColumn

from dataplatform.sinks.columns import FieldColumn
from dataplatform.sinks.sql.history_index import ensure_event_index, event_index, short_identifier
from dataplatform.sinks.sql.types import sql_type

log = logging.getLogger(__name__)
UPSERT, APPEND = "upsert", "append"
KEY = "_key"
METADATA_COLUMNS = ("_key", "_op", "_event_id", "_ts", "_kafka_partition", "_kafka_offset", "_deleted")


def table_name(topic: str, mode: str = UPSERT) -> str:
    name = topic.replace(".", "__").replace("-", "_").lower()
    if mode == APPEND:
        name += "_history"
    return short_identifier(name)


def metadata_columns(mode: str) -> list[Column]:
    """Where each row came from: the key, the change, the event and its Kafka position."""
    if mode == UPSERT:
        key = [Column(KEY, String(512), primary_key=True)]
        position = [Column("_kafka_partition", Integer, nullable=False),
                    Column("_kafka_offset", BigInteger, nullable=False)]
    else:  # a replayed event hits the primary key instead of adding a second row
        key = [Column(KEY, String(512), nullable=True)]
        position = [Column("_kafka_partition", Integer, primary_key=True, autoincrement=False),
                    Column("_kafka_offset", BigInteger, primary_key=True, autoincrement=False)]
    return [*key, Column("_op", String(16), nullable=False), Column("_event_id", String(128), nullable=True),
            Column("_ts", DateTime(timezone=True), nullable=True), *position,
            Column("_deleted", Boolean, nullable=False, default=False)]


class TableManager:
    """Creates a topic's table on first use and adds columns when the schema gains fields."""

    def __init__(self, engine: Engine, schema: str | None = None) -> None:
        self.engine = engine
        self.schema = schema
        self.metadata = MetaData(schema=schema)
        self.tables: dict[str, Table] = {}

    def ensure(self, name: str, mode: str, columns: list[FieldColumn]) -> Table:
        """The table, created or extended so it has every one of ``columns``."""
        table = self.tables.get(name)
        if table is None:
            table = self._create_or_reflect(name, mode, columns)
        missing = [c for c in columns if c.name not in table.c]
        if missing:
            self._add_columns(table, missing)
        return table

    def _create_or_reflect(self, name: str, mode: str, columns: list[FieldColumn]) -> Table:
        clashes = [c.name for c in columns if c.name in METADATA_COLUMNS]
        if clashes:
            raise ValueError(f"table {name}: entity fields {clashes} clash with the sink's metadata columns")
        existing = self._existing_columns(name)
        if existing is None:
            table = Table(name, self.metadata, *metadata_columns(mode),
                          *[Column(c.name, sql_type(c), nullable=True) for c in columns])
            if mode == APPEND:
                event_index(table)
            try:
                table.create(self.engine)
            except DBAPIError:  # another instance created it at the same moment
                if self._existing_columns(name) is None:
                    raise
        else:  # our types for the fields we know, the database's for columns a newer schema added
            ours = [Column(c.name, sql_type(c), nullable=True) for c in columns if c.name in existing]
            known = set(METADATA_COLUMNS) | {c.name for c in ours}
            theirs = [Column(n, info["type"], nullable=True) for n, info in existing.items() if n not in known]
            table = Table(name, self.metadata, *metadata_columns(mode), *ours, *theirs)
            if mode == APPEND:
                event_index(table)
                ensure_event_index(self.engine, table)
        self.tables[name] = table
        return table

    def _existing_columns(self, name: str) -> dict[str, dict] | None:
        inspector = inspect(self.engine)
        if not inspector.has_table(name, schema=self.schema):
            return None
        return {c["name"]: c for c in inspector.get_columns(name, schema=self.schema)}

    def _add_columns(self, table: Table, columns: list[FieldColumn]) -> None:
        preparer = self.engine.dialect.identifier_preparer
        for c in columns:
            column = Column(c.name, sql_type(c), nullable=True)
            ddl = CreateColumn(column).compile(dialect=self.engine.dialect)
            try:
                with self.engine.begin() as conn:
                    conn.execute(text(f"ALTER TABLE {preparer.format_table(table)} ADD COLUMN {ddl}"))
                log.info("table %s: added column %s (%s)", table.name, c.name, column.type)
            except DBAPIError:  # added meanwhile by another instance?
                if c.name not in (self._existing_columns(table.name) or {}):
                    raise
            table.append_column(column)
