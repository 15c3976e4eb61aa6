"""A Faust codec for data-product change events: Confluent wire-format Avro via the registry.

Encodes with :class:`dataplatform.product_io.serialization.ProductSerde` (confluent-kafka's own
AvroSerializer) and decodes with the product I/O layer's
:class:`~dataplatform.product_io.serialization.WireDecoder`, as every other reader of product
topics does (one parsed writer schema per registry id). Faust codecs are synchronous and run inside the event
loop, so :meth:`AvroEventCodec.warm` fetches every schema id of the product once at
start-up: afterwards the registry client answers from its cache and no HTTP call happens
per message.

Decoding never raises: a payload that cannot be decoded becomes an :class:`Undecodable`
value, so the agent can send it to the dead-letter topic with the message's coordinates
and carry on (a raising codec would crash the Faust stream).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from confluent_kafka.schema_registry import SchemaRegistryClient
from faust.serializers.codecs import Codec

from dataplatform.product_io.serialization import ProductSerde, WireDecoder
from dataplatform.product_io.names import value_subject
from dataplatform.products.envelope import epoch_ms
from dataplatform.products.product import DataProduct

log = logging.getLogger(__name__)


@dataclass
class Undecodable:
    """A message value the codec could not decode (class name and message of the error)."""

    error_class: str
    error_message: str


class AvroEventCodec(Codec):
    """Encode/decode one product's change-event records on one topic."""

    def __init__(self, product: DataProduct, client: SchemaRegistryClient, topic: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.product = product
        self.topic = topic or product.topic
        self.serde = ProductSerde(product, client)   # encodes (and registers)
        self.decoder = WireDecoder(client)            # decodes: one parsed schema per id, as every reader does

    def warm(self) -> list[int]:
        """Register the schema under this topic's subject, cache every version's id, and make
        one round trip through the serializer and the decoder so that their per-topic look-ups
        (subject name, schema by id) are cached before the event loop runs; the ids."""
        from confluent_kafka.schema_registry import Schema

        client, subject = self.serde.client, value_subject(self.topic)
        ids = {client.register_schema(subject, Schema(self.product.value_schema_str, "AVRO"))}
        for version in client.get_versions(subject):
            ids.add(client.get_version(subject, version).schema_id)
        for schema_id in ids:
            client.get_schema(schema_id)
            client.get_schema(schema_id, subject)
        sample = {"op": "c", "before": None, "after": sample_entity(self.product.entity_schema), "ts_ms": 0,
                  "source": {"system": "warm-up", "event_id": "warm-up", "position": 0}, "transaction": None}
        decoded = self._loads(self._dumps(sample))
        if isinstance(decoded, Undecodable):
            raise RuntimeError(f"cannot round-trip {self.product.name} on {self.topic}: {decoded.error_message}")
        return sorted(ids)

    def _dumps(self, obj: Any) -> bytes:
        return self.serde.serialize_value(obj, self.topic)

    def _loads(self, data: bytes) -> Any:
        try:
            record = self.decoder.decode(data)
            if not isinstance(record, dict) or "op" not in record:
                raise ValueError("not a change event (no 'op' field)")
            return normalise(record)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a dead letter
            return Undecodable(type(exc).__name__, _safe_message(exc))


def normalise(record: dict[str, Any]) -> dict[str, Any]:
    """Timestamps as epoch milliseconds (fastavro decodes timestamp-millis to datetime)."""
    if "ts_ms" in record:
        record["ts_ms"] = epoch_ms(record["ts_ms"])
    return record


def _safe_message(exc: Exception, limit: int = 300) -> str:
    """The error's text, cut short and on one line (it must never carry a payload)."""
    text = " ".join(str(exc).split())
    return text[:limit]


def sample_entity(schema: dict) -> dict[str, Any]:
    """A valid, meaningless record of an Avro record schema (for warming the codec up)."""
    return {f["name"]: _sample_of(f["type"]) for f in schema["fields"]}


def _sample_of(avro_type: Any) -> Any:
    if isinstance(avro_type, list):
        return None if "null" in avro_type else _sample_of(avro_type[0])
    if isinstance(avro_type, dict):
        kind = avro_type["type"]
        if kind == "enum":
            return avro_type["symbols"][0]
        if kind == "record":
            return sample_entity(avro_type)
        if kind == "array":
            return []
        if kind == "map":
            return {}
        return _sample_of(kind)
    return {"string": "", "int": 0, "long": 0, "boolean": False, "float": 0.0, "double": 0.0,
            "bytes": b"", "null": None}.get(avro_type, None)
