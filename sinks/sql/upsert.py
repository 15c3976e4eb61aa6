"""Dialect upserts (INSERT ... ON CONFLICT) for the databases the SQL sink supports."""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.engine import Dialect

SUPPORTED = ("postgresql", "sqlite")


class UnsupportedDatabaseError(ValueError):
    """The SQL sink needs INSERT ... ON CONFLICT: PostgreSQL or SQLite."""


def dialect_insert(dialect: Dialect, table: Table):
    """An ``insert`` with ``on_conflict_do_update``/``on_conflict_do_nothing`` for this dialect."""
    if dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        raise UnsupportedDatabaseError(
            f"the SQL sink supports {', '.join(SUPPORTED)}, not {dialect.name}: set DATABASE_URL to one of them")
    return insert(table)
