"""An Iceberg schema from a data product's Avro entity schema, and rows that fit it.

Unlike the SQL sink, Iceberg keeps the entity's shape: a nested record is a struct, an
array a list, a map a map, so Athena, Spark and DuckDB see the same structure the product
publishes. Logical types map to their Iceberg types (``date``, ``decimal(p, s)``,
``timestamp-millis`` to ``timestamptz``, ``local-timestamp-*`` to ``timestamp``, ``time``);
a union of null and one type is an optional field; a union of several types has no
Iceberg type and is kept as its JSON text, as in the other sinks. Personal fields follow
the sink's :class:`~dataplatform.sinks.columns.PersonalDataPolicy`: left out, or a keyed
hash in a string field.

Field ids are numbered here only so that the schema is valid: the catalog assigns the
table's own ids when it creates the table, and a later version is merged by field name
(``union_by_name``), so the ids the analysts' tools see never change.

Each table has the sink's metadata columns after the entity's fields. In the history
table every entity field is optional (a tombstone has no entity); in the current-state
table the fields keep the Avro nullability and ``_key`` is the identifier field.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

from pyiceberg.schema import Schema
from pyiceberg.types import (BinaryType, BooleanType, DateType, DecimalType, DoubleType, FixedType, FloatType,
                             IcebergType, IntegerType, ListType, LongType, MapType, NestedField, StringType,
                             StructType, TimestampType, TimestamptzType, TimeType)

from dataplatform.sinks.columns import MappingError, PersonalDataPolicy

Convert = Callable[[Any], Any]   # a decoded Avro value to what pyarrow takes for the Iceberg type
KEY = "_key"
METADATA = [  # (name, type, required in the history table); the same columns as the SQL and Parquet sinks
    (KEY, StringType(), False), ("_op", StringType(), True), ("_event_id", StringType(), False),
    ("_ts", TimestamptzType(), True), ("_kafka_partition", IntegerType(), True),
    ("_kafka_offset", LongType(), True), ("_deleted", BooleanType(), True),
]
PRIMITIVE_TYPES: dict[str, IcebergType] = {
    "string": StringType(), "int": IntegerType(), "long": LongType(), "float": FloatType(),
    "double": DoubleType(), "boolean": BooleanType(), "bytes": BinaryType(),
}
LOGICAL_TYPES: dict[str, IcebergType] = {
    "date": DateType(), "time-millis": TimeType(), "time-micros": TimeType(),
    "timestamp-millis": TimestamptzType(), "timestamp-micros": TimestamptzType(),
    "local-timestamp-millis": TimestampType(), "local-timestamp-micros": TimestampType(), "uuid": StringType(),
}


def _json_text(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=str, sort_keys=True)


class EntityShape:
    """One Avro entity schema as Iceberg fields, with the conversion of its decoded values."""

    def __init__(self, entity_schema: dict, policy: PersonalDataPolicy) -> None:
        self._ids = itertools.count(1)
        self._names: dict[str, Any] = {}
        self.policy = policy
        self.fields: list[NestedField] = []
        self._converters: list[tuple[str, Convert | None]] = []   # top-level field, conversion (None: as it is)
        namespace = entity_schema.get("namespace")
        for field in entity_schema["fields"]:
            name = field["name"]
            if name in policy.personal_fields:
                self._register(field["type"], namespace)
                if policy.hashes:
                    self.fields.append(NestedField(next(self._ids), name, StringType(), required=False,
                                                   doc="personal: keyed HMAC-SHA256 hash"))
                    self._converters.append((name, policy.hash))
                continue
            ftype, required, convert = self._type(field["type"], namespace, name)
            self.fields.append(NestedField(next(self._ids), name, ftype, required=required, doc=field.get("doc")))
            self._converters.append((name, convert))

    def schema(self, history: bool) -> Schema:
        """The table's schema: entity fields (all optional in the history table), then metadata."""
        ids = itertools.count(10_000)   # above any entity field id
        entity = [NestedField(f.field_id, f.name, f.field_type, required=f.required and not history, doc=f.doc)
                  for f in self.fields]
        meta = [NestedField(next(ids), name, ftype, required=required or (name == KEY and not history))
                for name, ftype, required in METADATA]
        key_id = [f.field_id for f in meta if f.name == KEY]
        return Schema(*entity, *meta, identifier_field_ids=[] if history else key_id)

    def values(self, entity: dict | None) -> dict[str, Any]:
        """The entity's fields as a row (every field None without an entity)."""
        if not isinstance(entity, dict):
            return {name: None for name, _ in self._converters}
        get = entity.get
        return {name: get(name) if convert is None else convert(get(name)) for name, convert in self._converters}

    # -- Avro types ---------------------------------------------------------------------
    def _register(self, schema: Any, namespace: str | None) -> None:
        if isinstance(schema, list):
            for member in schema:
                self._register(member, namespace)
        elif isinstance(schema, dict) and schema.get("type") in ("record", "enum", "fixed"):
            ns = schema.get("namespace", namespace)
            self._names[schema["name"]] = schema
            if ns and "." not in schema["name"]:
                self._names[f"{ns}.{schema['name']}"] = schema
            for field in schema.get("fields", []):
                self._register(field["type"], ns)
        elif isinstance(schema, dict) and schema.get("type") in ("array", "map"):
            self._register(schema.get("items", schema.get("values")), namespace)

    def _type(self, schema: Any, namespace: str | None, where: str) -> tuple[IcebergType, bool, Convert | None]:
        """(Iceberg type, required, conversion) of an Avro type."""
        if isinstance(schema, list):
            members = [m for m in schema if m != "null"]
            if len(members) == 1:
                ftype, _, convert = self._type(members[0], namespace, where)
                return ftype, len(members) == len(schema), convert
            return StringType(), False, _json_text   # several types: no Iceberg type, kept as JSON text
        if isinstance(schema, str):
            if schema == "null":
                return StringType(), False, _json_text
            if schema in PRIMITIVE_TYPES:
                return PRIMITIVE_TYPES[schema], True, None
            if schema not in self._names:
                raise MappingError(f"field {where}: unknown named type {schema!r}")
            return self._type(self._names[schema], namespace, where)
        kind, logical = schema.get("type"), schema.get("logicalType")
        if logical == "decimal":
            return DecimalType(schema["precision"], schema.get("scale", 0)), True, None
        if logical in LOGICAL_TYPES:
            return LOGICAL_TYPES[logical], True, None
        if kind in ("record", "enum", "fixed"):
            self._register(schema, namespace)
        if kind == "record":
            return self._struct(schema, schema.get("namespace", namespace), where)
        if kind == "enum":
            return StringType(), True, None
        if kind == "fixed":
            return FixedType(schema["size"]), True, None
        if kind == "array":
            element, required, convert = self._type(schema["items"], namespace, f"{where}[]")
            ltype = ListType(next(self._ids), element, element_required=required)
            return ltype, True, (lambda v, c=convert: None if v is None else [c(x) for x in v]) if convert else None
        if kind == "map":
            value, required, convert = self._type(schema["values"], namespace, f"{where}{{}}")
            mtype = MapType(next(self._ids), StringType(), next(self._ids), value, value_required=required)
            return mtype, True, (lambda v, c=convert: None if v is None else {k: c(x) for k, x in v.items()}) \
                if convert else None
        if kind in PRIMITIVE_TYPES or kind == "null":
            return self._type(kind, namespace, where)
        raise MappingError(f"field {where}: unsupported Avro type {kind!r}")

    def _struct(self, schema: dict, namespace: str | None, where: str) -> tuple[IcebergType, bool, Convert | None]:
        fields, converters = [], []
        for field in schema["fields"]:
            ftype, required, convert = self._type(field["type"], namespace, f"{where}.{field['name']}")
            fields.append(NestedField(next(self._ids), field["name"], ftype, required=required, doc=field.get("doc")))
            if convert is not None:
                converters.append((field["name"], convert))
        if not converters:
            return StructType(*fields), True, None

        def convert_struct(value: Any) -> Any:
            if not isinstance(value, dict):
                return value
            return {**value, **{name: c(value.get(name)) for name, c in converters}}
        return StructType(*fields), True, convert_struct
