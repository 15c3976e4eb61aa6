"""Parsing Avro schema text and giving it one canonical spelling and fingerprint.

Two clients that send the same schema with different whitespace or key order must get the
same id, so schemas are identified by a fingerprint of a canonical text. Avro's "Parsing
Canonical Form" is too aggressive for this (it drops defaults, docs and logical types, which
change compatibility and meaning), so instead the schema is parsed with Apache Avro and
re-serialised from its parsed form with keys in one fixed order.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import avro.errors
import avro.schema
import fastavro

from dataplatform.config import shown
from dataplatform.registry.errors import InvalidSchema

SUPPORTED_SCHEMA_TYPES = ("AVRO",)

# Keys first in this order (readable, like hand-written schemas); all others sorted after.
_KEY_ORDER = ["name", "type", "namespace", "doc", "aliases", "fields", "symbols", "items", "values",
              "size", "logicalType", "precision", "scale", "default", "order"]


def _ordered(node: Any) -> Any:
    if isinstance(node, dict):
        known = [k for k in _KEY_ORDER if k in node]
        rest = sorted(k for k in node if k not in _KEY_ORDER)
        return {k: _ordered(node[k]) for k in known + rest}
    if isinstance(node, list):
        return [_ordered(item) for item in node]
    return node


@dataclass(frozen=True)
class CanonicalSchema:
    """A parsed schema, its canonical text and the SHA-256 fingerprint of that text."""

    parsed: avro.schema.Schema
    text: str
    fingerprint: str


def parse_avro(schema_str: str) -> avro.schema.Schema:
    """Parse with Apache Avro, turning every parse failure into a 42201 ``InvalidSchema``."""
    if not isinstance(schema_str, str) or not schema_str.strip():
        raise InvalidSchema("empty schema")
    try:
        parsed = avro.schema.parse(schema_str)
    except (avro.errors.AvroException, json.JSONDecodeError, TypeError, ValueError, KeyError) as exc:
        raise InvalidSchema(str(exc) or type(exc).__name__) from exc
    check_defaults(schema_str)
    return parsed


def check_defaults(schema_str: str) -> None:
    """Refuse a field default that does not match its type (``"default": "abc"`` on an
    ``int``), as Confluent's registry and Java Avro do: Apache Avro for Python accepts it,
    so fastavro, which checks defaults while parsing, has the last word."""
    try:
        fastavro.parse_schema(json.loads(schema_str), named_schemas={})
    except (fastavro.schema.SchemaParseException, json.JSONDecodeError, TypeError, ValueError, KeyError) as exc:
        raise InvalidSchema(str(exc) or type(exc).__name__) from exc


def canonicalise(schema_str: str, schema_type: str | None = "AVRO") -> CanonicalSchema:
    """Validate ``schema_str`` and return its canonical text and fingerprint."""
    kind = (schema_type or "AVRO").upper() if isinstance(schema_type, str | None) else None
    if kind not in SUPPORTED_SCHEMA_TYPES:
        raise InvalidSchema(f"schemaType {shown(schema_type)} is not supported; this registry accepts AVRO only")
    parsed = parse_avro(schema_str)
    text = json.dumps(_ordered(parsed.to_json()), separators=(",", ":"), ensure_ascii=False)
    fingerprint = hashlib.sha256(f"{kind}:{text}".encode()).hexdigest()
    return CanonicalSchema(parsed=parsed, text=text, fingerprint=fingerprint)
