"""The Confluent wire format of a value: magic byte 0, the writer schema's registry id as a
4-byte big-endian integer, then the Avro body. Standard Kafka serializers (Java, Python,
Go) read and write exactly this, so every product event on the platform is framed here."""

from __future__ import annotations

MAGIC_BYTE = 0
SCHEMA_ID_SIZE = 4
HEADER_SIZE = 1 + SCHEMA_ID_SIZE  # the Avro body starts here


def header(schema_id: int) -> bytes:
    """The 5 bytes that go before the Avro body of a value written with ``schema_id``."""
    return bytes((MAGIC_BYTE,)) + schema_id.to_bytes(SCHEMA_ID_SIZE, "big")


def schema_id_of(value: bytes | None) -> int | None:
    """The registry id in a wire-format value; None when the value is not in the format."""
    if value is None or len(value) < HEADER_SIZE or value[0] != MAGIC_BYTE:
        return None
    return int.from_bytes(value[1:HEADER_SIZE], "big")


def body(value: bytes) -> bytes:
    """The Avro body of a wire-format value (after the header)."""
    return value[HEADER_SIZE:]
