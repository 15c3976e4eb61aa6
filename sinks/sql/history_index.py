"""The history table's unique event-id index, added on start to tables created before it.

A table written before the index existed may already hold an event twice (the repeat
filter forgot what it had seen when the sink was killed). The index cannot be built over
those rows, and the sink does not delete analysts' rows on its own: it refuses to start,
says how many event ids are duplicated, shows some, and gives the one statement that keeps
each event's first copy (lowest partition and offset) and deletes the later ones. Run it,
start the sink again, and the index is created; from then on the database skips a re-sent
event whether or not the sink restarted. Keeping the duplicates under a partial index
instead would leave the event counts wrong with nothing in the table saying so.
"""

from __future__ import annotations

import hashlib
import logging

from sqlalchemy import Engine, Index, Table, func, inspect, select
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)
EXAMPLES = 5
MAX_IDENTIFIER = 63


def short_identifier(name: str) -> str:
    """``name``, or cut to PostgreSQL's 63 characters and ended with a short hash of it."""
    if len(name) <= MAX_IDENTIFIER:
        return name
    return f"{name[:MAX_IDENTIFIER - 9]}_{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def event_index_name(table: str) -> str:
    """The history table's unique index on ``_event_id`` (index names are schema-wide on PostgreSQL)."""
    return short_identifier(f"{table}_event_id")


def event_index(table: Table) -> Index:
    """Unique ``_event_id`` over the rows that have one: a re-sent event hits it and is skipped."""
    return Index(event_index_name(table.name), table.c._event_id, unique=True,
                 postgresql_where=table.c._event_id.isnot(None), sqlite_where=table.c._event_id.isnot(None))




class DuplicateEventsError(RuntimeError):
    """A history table holds event ids more than once, so its unique index cannot be built."""


def dedupe_statement(engine: Engine, table: Table) -> str:
    """One SQL statement (PostgreSQL and SQLite) deleting every copy of an event but its first."""
    target = engine.dialect.identifier_preparer.format_table(table)
    name = engine.dialect.identifier_preparer.quote(table.name)
    return (f"DELETE FROM {target} WHERE _event_id IS NOT NULL AND EXISTS (SELECT 1 FROM {target} AS first "
            f"WHERE first._event_id = {name}._event_id AND (first._kafka_partition, first._kafka_offset) "
            f"< ({name}._kafka_partition, {name}._kafka_offset));")


def ensure_event_index(engine: Engine, table: Table) -> None:
    """Create the unique ``_event_id`` index if the table lacks it; raise if duplicates prevent it."""
    index = next(ix for ix in table.indexes if ix.name == event_index_name(table.name))
    if _has_index(engine, table, index.name):
        return
    event_id = table.c._event_id
    repeated = (select(event_id, func.count().label("copies")).where(event_id.isnot(None))
                .group_by(event_id).having(func.count() > 1))
    with engine.connect() as conn:
        counted = repeated.subquery()
        ids, extra = conn.execute(select(func.count(), func.coalesce(func.sum(counted.c.copies - 1), 0))).one()
        examples = conn.execute(repeated.order_by(event_id).limit(EXAMPLES)).all()
    if ids:
        shown = ", ".join(f"{e} ({n} copies)" for e, n in examples)
        raise DuplicateEventsError(
            f"history table {table.name} holds {ids} event id(s) more than once ({extra} extra row(s), "
            f"written before the table was unique on the event id), e.g. {shown}. The sink now skips a "
            f"re-sent event with a unique index on _event_id and will not delete rows on its own. Keep each "
            f"event's first copy and delete the rest, then start the sink again:\n  {dedupe_statement(engine, table)}")
    try:
        index.create(engine)
    except DBAPIError:   # created by another instance at the same moment?
        if not _has_index(engine, table, index.name):
            raise
    log.info("history table %s: added the unique index %s on _event_id", table.name, index.name)


def _has_index(engine: Engine, table: Table, name: str) -> bool:
    return name in {ix["name"] for ix in inspect(engine).get_indexes(table.name, schema=table.schema)}
