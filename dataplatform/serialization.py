"""Avro in the Confluent wire format, through a schema registry, per data product.

Everything uses confluent-kafka's own ``SchemaRegistryClient``, ``AvroSerializer`` and
``AvroDeserializer``: the same code works against the platform's registry and a real
Confluent Schema Registry. Keys are the entity key as UTF-8 strings.
"""

from __future__ import annotations

from functools import lru_cache

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext, StringDeserializer, StringSerializer

from dataplatform.config import get_settings
from schemas.product import DataProduct

CONTENT_TYPE = "application/vnd.confluent.avro"
key_serializer = StringSerializer("utf_8")
key_deserializer = StringDeserializer("utf_8")


def registry_url(url: str | None = None) -> str:
    url = url or get_settings().schema_registry_url
    if not url:
        raise ValueError("no schema registry: set SCHEMA_REGISTRY_URL or run `dataplatform registry serve`")
    return url


@lru_cache(maxsize=8)
def registry_client(url: str | None = None) -> SchemaRegistryClient:
    """One cached client per registry URL, so schema ids are looked up once per process."""
    return SchemaRegistryClient({"url": registry_url(url)})


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
