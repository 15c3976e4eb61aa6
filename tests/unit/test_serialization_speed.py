"""confluent-kafka's Avro deserializer with its per-schema work done once (dataplatform/product_io/serialization.py)."""

from __future__ import annotations

import datetime as dt

import confluent_kafka.schema_registry._sync.avro as confluent_avro
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from dataplatform.product_io.serialization import ProductSerde, once_per_schema, registry_client
from dataplatform.products.envelope import ChangeEvent
from dataplatform.products.product import get_product
from tests.support.entities import housing_unit
from tests.support.entities import HOUSING


def test_once_per_schema_computes_once_per_schema_object():
    calls = []

    def expand(schema):
        calls.append(schema)
        return {"expanded": schema["name"]}

    cached = once_per_schema(expand)
    a, b = {"name": "A"}, {"name": "A"}          # equal, but different objects
    assert cached(a) == cached(a) == {"expanded": "A"}
    assert cached(b) == {"expanded": "A"}
    assert calls == [a, b]                        # once per object: a change of schema is never missed


def test_the_deserializer_decodes_the_same_records_with_the_cache(registry_url):
    product = get_product(HOUSING)
    serde = ProductSerde(product, registry_client(registry_url))
    topic = "serialization-speed-test"
    events = [ChangeEvent("c", None, housing_unit(f"U{i}", "E08000021", "E12000001",
                                                  available_from=dt.date(2026, 12, 1) + dt.timedelta(days=i)),
                          "housing-service", i + 1) for i in range(20)]
    payloads = [serde.serialize_value(e.to_record(), topic) for e in events]

    assert hasattr(confluent_avro.expand_schema, "uncached")      # the cache is in place
    cached = [serde.deserialize_value(p, topic) for p in payloads]

    # the same payloads through a fresh deserializer with confluent-kafka's own functions
    patched = confluent_avro.expand_schema, confluent_avro.get_inline_tags
    confluent_avro.expand_schema = patched[0].uncached
    confluent_avro.get_inline_tags = patched[1].uncached
    try:
        plain = AvroDeserializer(registry_client(registry_url))
        ctx = SerializationContext(topic, MessageField.VALUE)
        uncached = [plain(p, ctx) for p in payloads]
    finally:
        confluent_avro.expand_schema, confluent_avro.get_inline_tags = patched
    assert cached == uncached
    assert [r["after"]["unit_id"] for r in cached] == [f"U{i}" for i in range(20)]
