"""confluent-kafka's Avro deserializer with its per-schema work done once (dataplatform/product_io/serialization.py)."""

from __future__ import annotations

import datetime as dt

import confluent_kafka.schema_registry._sync.avro as confluent_avro
import pytest
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext, SerializationError

from dataplatform.product_io.serialization import ProductSerde, WireDecoder, once_per_schema, registry_client
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


def test_the_wire_decoder_reads_what_confluents_deserializer_reads(registry_url):
    """The readers' fast decoder (one parsed writer schema per id) gives the very records
    confluent-kafka's AvroDeserializer gives, and refuses what is not a valid value."""
    product = get_product(HOUSING)
    client = registry_client(registry_url)
    serde = ProductSerde(product, client)
    topic = "wire-decoder-test"
    events = [ChangeEvent("u", housing_unit(f"U{i}", "E08000021", "E12000001"),
                          housing_unit(f"U{i}", "E08000021", "E12000001", available_from=dt.date(2026, 12, 1)),
                          "housing-service", i + 1) for i in range(5)]
    payloads = [serde.serialize_value(e.to_record(), topic) for e in events]

    decoder = WireDecoder(client)
    assert [decoder.decode(p) for p in payloads] == [serde.deserialize_value(p, topic) for p in payloads]
    assert decoder.decode(None) is None                       # a tombstone
    with pytest.raises(SerializationError, match="magic byte"):
        decoder.decode(b"\x07" + payloads[0][1:])
    with pytest.raises(SerializationError, match="not a valid Avro body"):
        decoder.decode(payloads[0][:8])
