"""Flatten an entity's Avro schema into flat columns, shared by the SQL and Parquet sinks.

Analysts query tables, not nested records, so a nested record becomes ``parent__child``
columns; arrays and maps (which have no fixed shape) become one JSON column; a union with
null makes a nullable column. Personal fields are left out, or replaced by a keyed hash
when the sink is allowed to keep them, so clear-text personal data never reaches a sink.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

from dataplatform.config import Settings
from dataplatform.products.envelope import OPS, entity_of
from dataplatform.products.product import DataProduct

PRIMITIVES = {"string", "int", "long", "float", "double", "boolean", "bytes", "null"}
LOGICAL_KINDS = {
    "timestamp-millis": "timestamp", "timestamp-micros": "timestamp",
    "local-timestamp-millis": "timestamp", "local-timestamp-micros": "timestamp",
    "date": "date", "time-millis": "time", "time-micros": "time", "uuid": "string",
}
SEPARATOR = "__"


class MappingError(ValueError):
    """A record that cannot be turned into a row (it goes to the dead-letter topic)."""


@dataclass(frozen=True)
class FieldColumn:
    """One flat column of an entity: where its value lives in the record and its kind."""

    name: str
    path: tuple[str, ...]
    kind: str  # string int long float double boolean bytes timestamp date time decimal json hash
    nullable: bool
    precision: int | None = None
    scale: int | None = None
    # a top-level field copied as it is (no nesting, no hashing): read with one dict lookup
    top_level: str | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.path) == 1 and self.kind != "hash":
            object.__setattr__(self, "top_level", self.path[0])


class PersonalDataPolicy:
    """What happens to personal fields: dropped (default) or stored as HMAC-SHA256 hex."""

    def __init__(self, personal_fields: set[str], key: bytes | None = None) -> None:
        self.personal_fields = set(personal_fields)
        self.key = key

    @property
    def hashes(self) -> bool:
        return self.key is not None

    def hash(self, value: Any) -> str | None:
        if value is None or self.key is None:
            return None
        text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
        return hmac.new(self.key, text.encode("utf-8"), hashlib.sha256).hexdigest()


def op_and_entity(value: dict) -> tuple[str, dict]:
    """(op, entity) of a change event (:func:`entity_of`); a MappingError when either is missing."""
    op, entity = value.get("op"), entity_of(value)
    if op not in OPS or not isinstance(entity, dict):
        raise MappingError(f"change event with op {op!r} has no {'before' if op == 'd' else 'after'} entity")
    return op, entity


def change_of(value: dict, kafka_key: str | None, product: DataProduct) -> tuple[str, dict, str]:
    """(op, entity, key) of a change event: the key is the Kafka key, else the product's key
    fields of the entity."""
    op, entity = op_and_entity(value)
    try:
        return op, entity, kafka_key if kafka_key is not None else product.key_of(entity)
    except KeyError as exc:
        raise MappingError(f"no key: the record has no Kafka key and no key field {exc}") from None


def personal_data_policy(settings: Settings, product: DataProduct, allowed: set[str]) -> PersonalDataPolicy:
    """A sink's policy for a product: its personal fields dropped, or hashed with
    ``SINK_PERSONAL_DATA_KEY`` when the product is in ``allowed`` (``--allow-personal``)."""
    if product.name not in allowed:
        return PersonalDataPolicy(product.personal_fields)
    secret = settings.sink_personal_data_key
    if secret is None or not secret.get_secret_value():
        raise ValueError(f"--allow-personal {product.name} needs a key to hash personal fields with: "
                         "set SINK_PERSONAL_DATA_KEY")
    return PersonalDataPolicy(product.personal_fields, secret.get_secret_value().encode("utf-8"))


def entity_columns(entity_schema: dict, policy: PersonalDataPolicy) -> list[FieldColumn]:
    """The flat columns of an entity record schema (its top-level personal fields dropped or hashed)."""
    names: dict[str, Any] = {}
    columns: list[FieldColumn] = []
    for field in entity_schema["fields"]:
        if field["name"] in policy.personal_fields:
            _register_names(field["type"], names, entity_schema.get("namespace"))
            if policy.hashes:
                columns.append(FieldColumn(field["name"], (field["name"],), "hash", True))
            continue
        columns.extend(_columns(field["type"], (field["name"],), False, names, entity_schema.get("namespace")))
    return columns


def entity_schema_of_envelope(value_schema: dict) -> dict:
    """The entity record inside a change-event envelope schema (the type of ``before``)."""
    for field in value_schema.get("fields", []):
        if field["name"] == "before":
            for member in field["type"]:
                if isinstance(member, dict) and member.get("type") == "record":
                    return member
    raise MappingError("the value schema is not a change-event envelope (no 'before' record)")


def _full_name(schema: dict, namespace: str | None) -> str:
    name = schema["name"]
    ns = schema.get("namespace", namespace)
    return name if "." in name or not ns else f"{ns}.{name}"


def _register_names(schema: Any, names: dict[str, Any], namespace: str | None) -> None:
    if isinstance(schema, list):
        for member in schema:
            _register_names(member, names, namespace)
    elif isinstance(schema, dict) and schema.get("type") in ("record", "enum", "fixed"):
        full = _full_name(schema, namespace)
        names[full] = names[schema["name"]] = schema
        for field in schema.get("fields", []):
            _register_names(field["type"], names, schema.get("namespace", namespace))


def _columns(schema: Any, path: tuple[str, ...], nullable: bool, names: dict[str, Any],
             namespace: str | None) -> list[FieldColumn]:
    name = SEPARATOR.join(path)
    if isinstance(schema, str) and schema not in PRIMITIVES:
        if schema not in names:
            raise MappingError(f"column {name}: unknown named type {schema!r}")
        schema = names[schema]
        if schema.get("type") == "record":
            return _record_columns(schema, path, nullable, names, namespace)
        return _columns(schema, path, nullable, names, namespace)
    if isinstance(schema, str):
        return [FieldColumn(name, path, "json" if schema == "null" else schema, nullable or schema == "null")]
    if isinstance(schema, list):
        members = [m for m in schema if m != "null"]
        if len(members) == 1:
            return _columns(members[0], path, nullable or len(members) < len(schema), names, namespace)
        return [FieldColumn(name, path, "json", True)]
    kind = schema.get("type")
    logical = schema.get("logicalType")
    if logical == "decimal":
        return [FieldColumn(name, path, "decimal", nullable, schema.get("precision"), schema.get("scale", 0))]
    if logical in LOGICAL_KINDS:
        return [FieldColumn(name, path, LOGICAL_KINDS[logical], nullable)]
    if kind == "record":
        _register_names(schema, names, namespace)
        return _record_columns(schema, path, nullable, names, namespace)
    if kind == "enum":
        _register_names(schema, names, namespace)
        return [FieldColumn(name, path, "string", nullable)]
    if kind == "fixed":
        _register_names(schema, names, namespace)
        return [FieldColumn(name, path, "bytes", nullable)]
    if kind in ("array", "map"):
        return [FieldColumn(name, path, "json", nullable)]
    if kind in PRIMITIVES:
        return _columns(kind, path, nullable, names, namespace)
    raise MappingError(f"column {name}: unsupported Avro type {kind!r}")


def _record_columns(schema: dict, path: tuple[str, ...], nullable: bool, names: dict[str, Any],
                    namespace: str | None) -> list[FieldColumn]:
    out: list[FieldColumn] = []
    for field in schema["fields"]:
        out.extend(_columns(field["type"], path + (field["name"],), nullable, names,
                            schema.get("namespace", namespace)))
    return out


def extract(entity: dict | None, column: FieldColumn, policy: PersonalDataPolicy) -> Any:
    """The value of ``column`` in a decoded entity (None when absent, e.g. an older schema)."""
    value: Any = entity
    for step in column.path:
        if not isinstance(value, dict):
            return None
        value = value.get(step)
    if column.kind == "hash":
        return policy.hash(value)
    return value


def entity_values(entity: dict | None, columns: list[FieldColumn], policy: PersonalDataPolicy) -> dict[str, Any]:
    """A row of ``columns`` from a decoded entity: what :func:`extract` gives for each column,
    with a top-level field read in one lookup (this runs for every record a sink writes)."""
    if not isinstance(entity, dict):
        return {c.name: extract(entity, c, policy) for c in columns}
    get = entity.get
    return {c.name: get(c.top_level) if c.top_level is not None else extract(entity, c, policy) for c in columns}
