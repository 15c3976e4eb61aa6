"""What a sink reads: the topics' data products, and each Kafka message decoded into a record.

Kept apart from the consume loop so that a sink's mapping (``prepare``) and its tests deal
only in :class:`SinkRecord` and :class:`Batch`, never in Kafka messages or wire bytes.
Decoding is the sinks' hot path, so it reads the Confluent framing with fastavro and one
parsed writer schema per id, rather than through ``AvroDeserializer``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Message
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.serialization import SerializationError
from fastavro import parse_schema, schemaless_reader

from dataplatform.product_io.serialization import ProductSerde
from dataplatform.product_io.wire import body, schema_id_of
from dataplatform.products.product import DataProduct, load_products

TopicPartitionKey = tuple[str, int]


class UnknownTopicError(LookupError):
    """A topic that no data product publishes."""


@dataclass
class SinkRecord:
    """One decoded Kafka message of a data product topic."""

    topic: str
    partition: int
    offset: int
    key: str | None
    value: dict | None  # None for a tombstone
    schema_id: int | None
    timestamp_ms: int | None
    product: DataProduct


@dataclass
class Batch:
    """What one checkpoint makes durable: prepared rows, and per partition the next offset."""

    items: list[Any] = field(default_factory=list)
    next_offsets: dict[TopicPartitionKey, int] = field(default_factory=dict)
    rows: dict[TopicPartitionKey, int] = field(default_factory=dict)
    errors: dict[TopicPartitionKey, str] = field(default_factory=dict)


def resolve_products(topics: Iterable[str] = (), products: Iterable[DataProduct] = (),
                     products_root: Any = None, topic_products: Mapping[str, DataProduct] | None = None,
                     ) -> dict[str, DataProduct]:
    """Each requested topic's data product, by topic; explicit products win over the catalogue.
    ``topic_products`` maps topics whose names differ from the product's (a prefixed copy)."""
    by_topic = {**{p.topic: p for p in products}, **(topic_products or {})}
    wanted = [t for t in topics if t not in by_topic]
    if wanted:
        known = {p.topic: p for p in (load_products(products_root) if products_root else load_products()).values()}
        for t in wanted:
            if t not in known:
                raise UnknownTopicError(
                    f"no data product publishes topic {t!r}; known topics: {', '.join(sorted(known)) or 'none'}")
            by_topic[t] = known[t]
    if not by_topic:
        raise UnknownTopicError("no topic to sink: pass at least one --topic")
    return by_topic


class RecordDecoder:
    """Decodes messages of the given topics into :class:`SinkRecord`, caching writer schemas by id."""

    def __init__(self, products: Mapping[str, DataProduct], registry: SchemaRegistryClient) -> None:
        self.products = products
        self.registry = registry
        self._writer_schemas: dict[int, dict] = {}

    def decode(self, msg: Message) -> SinkRecord:
        topic = msg.topic()
        value = self.decode_value(msg.value())
        key = ProductSerde.deserialize_key(msg.key())
        ts_type, ts = msg.timestamp()
        return SinkRecord(topic, msg.partition(), msg.offset(), key, value, schema_id_of(msg.value()),
                          ts if ts_type else None, self.products[topic])

    def decode_value(self, data: bytes | None) -> dict | None:
        """Confluent wire format with fastavro, one parsed writer schema per id (what
        AvroDeserializer does, without its per-message overhead)."""
        if data is None:
            return None
        schema_id = schema_id_of(data)
        if schema_id is None:
            raise SerializationError("Unexpected magic byte: not the Confluent Avro wire format")
        schema = self._writer_schemas.get(schema_id)
        if schema is None:
            schema = parse_schema(json.loads(self.registry.get_schema(schema_id).schema_str))
            self._writer_schemas[schema_id] = schema
        try:
            return schemaless_reader(io.BytesIO(body(data)), schema, None)
        except (EOFError, ValueError, IndexError, TypeError, UnicodeDecodeError) as exc:
            raise SerializationError(f"not a valid Avro body for schema id {schema_id}: {exc}") from exc


def event_id(value: dict | None) -> str | None:
    """A change event's id (None for a tombstone or a value without one)."""
    source = value.get("source") if isinstance(value, dict) else None
    return source.get("event_id") if isinstance(source, dict) else None
