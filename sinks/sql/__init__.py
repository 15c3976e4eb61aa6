"""The SQL sink: data product topics kept as tables (current state or full history)."""

from sinks.sql.tables import table_name
from sinks.sql.writer import SqlSink

__all__ = ["SqlSink", "table_name"]
