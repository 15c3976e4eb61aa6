"""The product I/O layer's framing and names: what every producer and consumer on the
platform (and any standard Confluent client) agrees on."""

from __future__ import annotations

from confluent_kafka.schema_registry.avro import AvroDeserializer

from dataplatform.product_io import wire
from dataplatform.product_io.dead_letters import H_ERROR_MESSAGE, H_PROCESSOR, dead_letter_headers
from dataplatform.product_io.names import dead_letter_topic, value_subject
from dataplatform.products.product import get_product


def test_the_header_is_the_magic_byte_and_the_big_endian_schema_id() -> None:
    assert wire.header(1) == b"\x00\x00\x00\x00\x01"
    assert wire.header(0x01020304) == b"\x00\x01\x02\x03\x04"
    assert len(wire.header(7)) == wire.HEADER_SIZE == 5


def test_a_framed_value_gives_back_its_schema_id_and_body() -> None:
    value = wire.header(4242) + b"avro body"
    assert wire.schema_id_of(value) == 4242
    assert wire.body(value) == b"avro body"


def test_values_not_in_the_wire_format_have_no_schema_id() -> None:
    for value in (None, b"", b"\x00\x00\x01", b"\x01\x00\x00\x00\x01body", b'{"json": true}'):
        assert wire.schema_id_of(value) is None


def test_confluent_reads_the_header_the_same_way() -> None:
    """confluent-kafka's own deserializer finds the same schema id in our framing (it asks
    its registry for that id, which is where this stand-in answers)."""
    asked = []

    class Registry:
        def get_schema(self, schema_id, *args, **kwargs):
            asked.append(schema_id)
            raise LookupError("stop here")

    try:
        AvroDeserializer(Registry())(wire.header(31337) + b"\x02", None)
    except Exception:
        pass
    assert asked == [31337]


def test_subject_and_dead_letter_names_follow_the_topic() -> None:
    assert value_subject("hmpps.x.v1") == "hmpps.x.v1-value"
    assert dead_letter_topic("hmpps.x.v1") == "hmpps.x.v1.dlq"
    product = get_product("social_housing_availability")
    assert product.value_subject == value_subject(product.topic)
    assert product.dead_letter_topic == dead_letter_topic(product.topic)


def test_dead_letter_headers_say_where_from_and_why_then_who() -> None:
    headers = dead_letter_headers("hmpps.x.v1", 2, 41, "ValueError", "bad area", extra={H_PROCESSOR: "app-1"})
    assert headers == [
        ("dlq.source.topic", b"hmpps.x.v1"), ("dlq.source.partition", b"2"), ("dlq.source.offset", b"41"),
        ("dlq.error.class", b"ValueError"), ("dlq.error.message", b"bad area"), ("dlq.processor.app", b"app-1"),
    ]
    assert [name for name, _ in dead_letter_headers("t", 0, 0, "E", "m")][-1] == H_ERROR_MESSAGE
