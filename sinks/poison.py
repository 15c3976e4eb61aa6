"""Poison records: which failures belong to a record, and copying such a record aside.

A record the sink cannot decode or map would fail the same way on every retry, so it goes
to its dead-letter topic and the sink carries on; a failure of the infrastructure (broker,
registry, store unreachable) is retried instead, since dead-lettering would lose records
that are fine. The decision and the copy live here, the dead-letter topic itself in
:mod:`dataplatform.product_io.dead_letters`, shared with the stream processor.
"""

from __future__ import annotations

from confluent_kafka import KafkaException, Message
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import SerializationError

from dataplatform.product_io.dead_letters import DeadLetterQueue
from dataplatform.sinks.records import RecordDecoder
from dataplatform.sinks.retrying import SinkStopped


def is_poison(exc: BaseException) -> bool:
    """Errors that belong to the record (dead-letter it) rather than to the infrastructure (retry)."""
    if isinstance(exc, SerializationError):  # a KafkaException, but about the bytes of this record
        return True
    if isinstance(exc, SchemaRegistryError):
        return exc.http_status_code == 404  # an id the registry never issued
    return not isinstance(exc, (OSError, ConnectionError, TimeoutError, SinkStopped, KafkaException))


def dead_letter(dead_letters: DeadLetterQueue, decoder: RecordDecoder, msg: Message, exc: BaseException) -> str:
    """Queue a copy of ``msg`` on its dead-letter topic; the error as the batch reports it."""
    text = dead_letters.send(msg, exc, personal_values(decoder, msg))
    return f"{type(exc).__name__}: {text}"


def personal_values(decoder: RecordDecoder, msg: Message) -> list[object]:
    """Personal values of a message we can still decode, to keep them out of DLQ headers."""
    try:
        record = decoder.decode(msg)
    except Exception:  # noqa: BLE001 - undecodable: nothing to scrub
        return []
    values: list[object] = []
    for side in ("before", "after"):
        entity = (record.value or {}).get(side) or {}
        values.extend(entity.get(f) for f in record.product.personal_fields)
    return values
