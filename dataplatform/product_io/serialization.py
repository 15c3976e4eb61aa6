"""Avro in the Confluent wire format, through a schema registry, per data product.

Everything uses confluent-kafka's own ``SchemaRegistryClient``, ``AvroSerializer`` and
``AvroDeserializer``: the same code works against the platform's registry and a real
Confluent Schema Registry. Keys are the entity key as UTF-8 strings. Reading is a hot path
(sinks, tails), so :class:`WireDecoder` decodes values with fastavro directly, one parsed
writer schema per id: what ``AvroDeserializer`` returns, without its per-message work.
"""

from __future__ import annotations

import io
import json
from functools import lru_cache, wraps
from typing import Any, Callable

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import (MessageField, SerializationContext, SerializationError, StringDeserializer,
                                           StringSerializer)
from fastavro import parse_schema, schemaless_reader

from dataplatform.config import Settings
from dataplatform.product_io.wire import body, schema_id_of
from dataplatform.registry_config import registry_client_config
from dataplatform.products.product import DataProduct


def once_per_schema(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``fn(schema)`` computed once per parsed-schema object, then reused.

    confluent-kafka's ``AvroDeserializer`` (2.16) expands the reader schema and collects
    its inline rule tags for *every message*, before it knows whether the subject has any
    rules: about half of its time per message, spent on a parsed schema that it keeps
    cached and never changes. The results depend only on the schema, so they are kept per
    schema object (held, so its id cannot be reused while cached); the module's functions
    are replaced by cached ones when this module is imported. The decoded records are
    unchanged: ``tests/unit/test_serialization_speed.py`` compares them.
    """
    cache: dict[int, tuple[Any, Any]] = {}

    @wraps(fn)
    def cached(schema: Any) -> Any:
        hit = cache.get(id(schema))
        if hit is not None and hit[0] is schema:
            return hit[1]
        if len(cache) >= 256:
            cache.clear()
        result = fn(schema)
        cache[id(schema)] = (schema, result)
        return result

    cached.uncached = fn  # type: ignore[attr-defined]
    return cached


def _cache_per_schema_work() -> None:
    """Install :func:`once_per_schema` in confluent-kafka's Avro module (2.16's layout; an
    older or newer layout without these functions is left as it is)."""
    try:
        import confluent_kafka.schema_registry._sync.avro as confluent_avro
    except ImportError:
        return
    for name in ("expand_schema", "get_inline_tags"):
        fn = getattr(confluent_avro, name, None)
        if fn is not None and not hasattr(fn, "uncached"):
            setattr(confluent_avro, name, once_per_schema(fn))


_cache_per_schema_work()

CONTENT_TYPE = "application/vnd.confluent.avro"
key_serializer = StringSerializer("utf_8")
key_deserializer = StringDeserializer("utf_8")


def registry_client(url: str | None = None, settings: Settings | None = None) -> SchemaRegistryClient:
    """One cached client per registry URL and credentials, so schema ids are looked up once
    per process; address and credentials come from :func:`registry_client_config`."""
    return _cached_client(tuple(sorted(registry_client_config(url, settings).items())))


@lru_cache(maxsize=8)
def _cached_client(conf: tuple[tuple[str, str], ...]) -> SchemaRegistryClient:
    return SchemaRegistryClient(dict(conf))


class ProductSerde:
    """Serialize and deserialize one product's change events (values) and keys."""

    def __init__(self, product: DataProduct, client: SchemaRegistryClient, auto_register: bool = True) -> None:
        self.product = product
        self.client = client
        self._serializer = AvroSerializer(
            client, product.value_schema_str,
            conf={"auto.register.schemas": auto_register, "normalize.schemas": False},
        )
        self._deserializer = AvroDeserializer(client)

    def register(self) -> int:
        """Register the product's value schema (refused with 409 if incompatible); its id."""
        from confluent_kafka.schema_registry import Schema

        return self.client.register_schema(self.product.value_subject, Schema(self.product.value_schema_str, "AVRO"))

    def serialize_value(self, record: dict, topic: str | None = None) -> bytes:
        ctx = SerializationContext(topic or self.product.topic, MessageField.VALUE)
        return self._serializer(record, ctx)

    def deserialize_value(self, data: bytes | None, topic: str | None = None) -> dict | None:
        if data is None:
            return None  # tombstone
        ctx = SerializationContext(topic or self.product.topic, MessageField.VALUE)
        return self._deserializer(data, ctx)

    def serialize_key(self, key: str, topic: str | None = None) -> bytes:
        return key_serializer(key, SerializationContext(topic or self.product.topic, MessageField.KEY))

    @staticmethod
    def deserialize_key(data: bytes | None) -> str | None:
        return None if data is None else data.decode("utf-8")


class WireDecoder:
    """Decodes wire-format values of any product with fastavro, one parsed writer schema per
    registry id (fetched once): the records ``AvroDeserializer`` returns for a subject
    without rules, at a fraction of its cost per message (``tests/unit/test_serialization_speed.py``
    compares them). Raises ``SerializationError`` for bytes that are not a valid value."""

    def __init__(self, client: SchemaRegistryClient) -> None:
        self.client = client
        self._writer_schemas: dict[int, Any] = {}

    def decode(self, data: bytes | None) -> dict | None:
        """The decoded value; None for a tombstone."""
        if data is None:
            return None
        schema_id = schema_id_of(data)
        if schema_id is None:
            raise SerializationError("Unexpected magic byte: not the Confluent Avro wire format")
        schema = self._writer_schemas.get(schema_id)
        if schema is None:
            schema = parse_schema(json.loads(self.client.get_schema(schema_id).schema_str))
            self._writer_schemas[schema_id] = schema
        try:
            return schemaless_reader(io.BytesIO(body(data)), schema, None)
        except (EOFError, ValueError, IndexError, TypeError, UnicodeDecodeError) as exc:
            raise SerializationError(f"not a valid Avro body for schema id {schema_id}: {exc}") from exc
