"""Avro column kinds to SQLAlchemy types, so a table's columns say what the schema says.

timestamp-millis becomes a timezone-aware DateTime, date a Date, decimal a Numeric with the
schema's precision and scale, enums a plain String (no native ENUM: adding a symbol is a
compatible schema change and must not need a migration), arrays and maps JSON.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Boolean, Date, DateTime, Double, Float, Integer, LargeBinary, Numeric, String, Text, Time
from sqlalchemy.types import TypeEngine

from dataplatform.sinks.columns import FieldColumn

HASH_HEX_LENGTH = 64


def sql_type(column: FieldColumn) -> TypeEngine:
    kind = column.kind
    if kind == "decimal":
        return Numeric(column.precision, column.scale)
    simple: dict[str, TypeEngine] = {
        "string": Text(), "int": Integer(), "long": BigInteger(), "float": Float(), "double": Double(),
        "boolean": Boolean(), "bytes": LargeBinary(), "timestamp": DateTime(timezone=True), "date": Date(),
        "time": Time(), "json": JSON(), "hash": String(HASH_HEX_LENGTH),
    }
    try:
        return simple[kind]
    except KeyError:
        raise ValueError(f"column {column.name}: no SQL type for kind {kind!r}") from None
