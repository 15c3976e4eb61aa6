"""The SQL sink: data product topics kept as tables (current state or full history)."""

from dataplatform.sinks.sql.tables import table_name
from dataplatform.sinks.sql.writer import SqlSink

__all__ = ["SqlSink", "table_name"]
