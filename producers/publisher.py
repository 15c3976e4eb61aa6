"""The producer SDK: how a service publishes its changes as a data product.

    with Publisher(get_product("social_housing_availability"), source_system="housing-service") as pub:
        pub.created(unit)                  # blocks until the broker acknowledged; a DeliveryResult
        pub.updated(before, after)
        pub.deleted(before)                # the 'd' event, then a tombstone with the same key
        handle = pub.publish(event, wait=False)   # batched path: a handle now ...
        pub.flush(30)                      # ... and DeliveryError listing whatever failed

Why it looks like this:

* Every entity is validated against the product's schema *before* anything is sent, so a
  bad record raises :class:`RecordValidationError` (field path, value, expected type) in
  the service that made it, and the topic never sees it.
* Opening registers the product's value schema; a registry that refuses it (HTTP 409,
  incompatible) stops the service at start-up with :class:`SchemaIncompatibleError`.
* Values are written in the Confluent wire format by :mod:`~dataplatform.producers.encoder`,
  using the id the registry gave: byte for byte what ``AvroSerializer`` writes.
* The producer is :func:`reliable_producer_config` (acks=all, idempotence, bounded delivery
  timeout): a delivery result means every in-sync replica has the event.

This module is the SDK's surface and its waiting; what a publish returns lives in
:mod:`~dataplatform.producers.delivery`, event ids and positions (and why positions grow)
in :mod:`~dataplatform.producers.event_ids`, the bytes in :mod:`~dataplatform.producers.encoder`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import KafkaException, Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from fastavro.validation import validate as fast_validate

from dataplatform.config import Settings, get_settings
from dataplatform.kafka.connection import check_connection
from dataplatform.kafka_config import reliable_producer_config
from dataplatform.product_io.names import value_subject
from dataplatform.product_io.serialization import ProductSerde, registry_client
from dataplatform.producers.delivery import (
    DeliveryError,
    DeliveryFailure,
    DeliveryHandle,
    DeliveryResult,
    PublisherError,
)
from dataplatform.producers.encoder import EnvelopeEncoder
from dataplatform.producers.event_ids import EventIds, PositionClock
from dataplatform.producers.fast_validation import compile_record_check
from dataplatform.products.envelope import ChangeEvent, envelope_record, epoch_ms
from dataplatform.products.product import DataProduct

__all__ = ["DeliveryError", "DeliveryFailure", "DeliveryHandle", "DeliveryResult", "Publisher", "PublisherError",
           "SchemaIncompatibleError"]

log = logging.getLogger(__name__)

#: Extra seconds the sync path waits beyond the producer's own delivery timeout.
_SYNC_GRACE_S = 10.0


class SchemaIncompatibleError(PublisherError):
    """The schema registry refused the product's schema (HTTP 409)."""


class Publisher:
    """Publishes one data product's change events; use it as a context manager."""

    def __init__(self, product: DataProduct, *, bootstrap: str | None = None, registry_url: str | None = None,
                 source_system: str, settings: Settings | None = None, topic: str | None = None,
                 producer_config: dict[str, object] | None = None) -> None:
        self.product = product
        self.source_system = source_system
        self.settings = settings or get_settings()
        self.topic = topic or product.topic
        self.subject = value_subject(self.topic)
        self.registry_url = registry_url or self.settings.schema_registry_url
        self._config = {**reliable_producer_config(bootstrap, self.settings), **(producer_config or {})}
        self._delivery_timeout_s = float(self._config.get("delivery.timeout.ms", 120_000)) / 1000  # type: ignore[arg-type]
        self._producer: Producer | None = None
        self._failures: list[DeliveryFailure] = []
        self._clock = PositionClock()
        self._fast_entity_schema = product.parsed_entity_schema
        self._record_check = compile_record_check(product.entity_schema)
        self._ids = EventIds()
        self.encoder = EnvelopeEncoder(product)
        keys = list(product.manifest.keyFields)
        self._single_key = keys[0] if len(keys) == 1 else None
        self.schema_id: int | None = None

    # -- lifecycle ----------------------------------------------------------
    def open(self) -> "Publisher":
        """Register the product's schema and connect the producer (idempotent)."""
        if self._producer is not None:
            return self
        if not self.registry_url:
            raise PublisherError("no schema registry: set SCHEMA_REGISTRY_URL (or pass registry_url=) "
                                 "so the publisher can register the product's schema")
        # A wrong password or untrusted certificate stops the service now, saying which.
        check_connection(str(self._config["bootstrap.servers"]), self.settings)
        client = registry_client(self.registry_url, self.settings)  # address and credentials, mapped once
        self.serde = ProductSerde(self.product, client)
        self.schema_id = self._register(client)
        self.encoder.bind(self.schema_id)
        self._producer = Producer(self._config)
        return self

    def _register(self, client: SchemaRegistryClient) -> int:
        try:
            if self.subject == self.product.value_subject:
                return self.serde.register()
            return client.register_schema(self.subject, Schema(self.product.value_schema_str, "AVRO"))
        except SchemaRegistryError as exc:
            if exc.http_status_code == 409:
                raise SchemaIncompatibleError(
                    f"the schema registry at {self.registry_url} refused the schema of {self.product.name} "
                    f"(version {self.product.manifest.version}) for subject {self.subject}: it is incompatible "
                    f"with the version already registered ({exc.error_message}). Make the change backward "
                    "compatible (add fields with defaults) or publish it as a new major version.") from None
            raise PublisherError(f"the schema registry at {self.registry_url} failed to register "
                                 f"{self.subject}: HTTP {exc.http_status_code}: {exc.error_message}") from None
        except Exception as exc:  # connection refused, DNS, TLS...
            raise PublisherError(f"cannot reach the schema registry at {self.registry_url} to register "
                                 f"{self.subject}: {exc}. Is SCHEMA_REGISTRY_URL right and the registry up?") from None

    def __enter__(self) -> "Publisher":
        return self.open()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
            return
        try:  # already failing: deliver what we can, but do not hide the original error
            self.close()
        except Exception as close_exc:  # noqa: BLE001
            log.error("while closing after %s: %s", exc_type.__name__, close_exc)

    def close(self, timeout: float | None = None) -> None:
        """Flush everything; raise DeliveryError if any event was not delivered."""
        if self._producer is None:
            return
        try:
            self.flush(timeout)
        finally:
            self._producer = None

    # -- the business API ----------------------------------------------------
    def created(self, entity: dict, *, position: int | None = None, ts_ms: int | None = None,
            trace_id: str | None = None, wait: bool = True) -> Any:
        """Publish op 'c'. ``wait=True``: the DeliveryResult once acknowledged; ``wait=False``:
        a DeliveryHandle now (the same for updated/snapshot/deleted)."""
        return self._send_new("c", None, entity, position, ts_ms, trace_id, wait)

    def updated(self, before: dict, after: dict, *, position: int | None = None, ts_ms: int | None = None,
            trace_id: str | None = None, wait: bool = True) -> Any:
        return self._send_new("u", before, after, position, ts_ms, trace_id, wait)

    def snapshot(self, entity: dict, *, position: int | None = None, ts_ms: int | None = None,
            trace_id: str | None = None, wait: bool = True) -> Any:
        return self._send_new("r", None, entity, position, ts_ms, trace_id, wait)

    def deleted(self, before: dict, *, position: int | None = None, ts_ms: int | None = None,
            trace_id: str | None = None, wait: bool = True) -> Any:
        """The 'd' event, then a tombstone with the same key; the 'd' event's result."""
        return self._send_new("d", before, None, position, ts_ms, trace_id, wait)

    def _send_new(self, op: str, before: dict | None, after: dict | None, position: int | None,
                  ts_ms: int | None, trace_id: str | None, wait: bool) -> Any:
        """The SDK's own events: the envelope record is built directly, skipping a
        ChangeEvent per event on the hot path."""
        event_id = self._ids.next()
        record = envelope_record(op, before, after, epoch_ms(ts_ms), self.source_system, event_id,
                                 self._clock.next() if position is None else position)
        return self._send(op, before, after, record, event_id, trace_id, wait, None)

    def publish(self, event: ChangeEvent, *, wait: bool = True, trace_id: str | None = None,
                timeout: float | None = None) -> Any:
        """Send one change event (and a tombstone after a delete).

        ``wait=True``: block until acknowledged and return the DeliveryResult.
        ``wait=False``: return a DeliveryHandle now; :meth:`flush` waits for all of them.
        """
        return self._send(event.op, event.before, event.after, event.to_record(), event.event_id, trace_id,
                          wait, timeout)

    def _send(self, op: str, before: dict | None, after: dict | None, record: dict, event_id: str,
              trace_id: str | None, wait: bool, timeout: float | None) -> Any:
        producer = self._require_open()
        if before is not None:
            self.validate(before)
        if after is not None:
            self.validate(after)
        key = self._key_of(after if after is not None else before)  # type: ignore[arg-type]
        value = self.encoder.encode_validated(record)
        headers = self.encoder.headers(event_id, trace_id)
        handle = DeliveryHandle(self, event_id, key)
        self._produce(producer, key, value, headers, handle._on_delivery)
        if op == "d":
            tomb = DeliveryHandle(self, event_id, key)
            self._produce(producer, key, None, headers, tomb._on_delivery)
            if wait:
                self._result_of(tomb, timeout)
        return self._result_of(handle, timeout) if wait else handle

    def _result_of(self, handle: DeliveryHandle, timeout: float | None) -> DeliveryResult:
        """The sync path: raise this event's failure here, not again from flush()."""
        try:
            return handle.result(timeout)
        except DeliveryError:
            self._failures = [f for f in self._failures if f.event_id != handle.event_id]
            raise

    def validate(self, entity: dict) -> None:
        """Raise RecordValidationError unless ``entity`` fits the product's schema.

        A check compiled from the schema (see :mod:`dataplatform.producers.fast_validation`; fastavro's
        validator for nested schemas) accepts the common, valid case quickly; only a record
        it rejects goes through the platform's validator, which explains what is wrong.
        """
        if self._record_check is not None:
            if self._record_check(entity):
                return
        elif fast_validate(entity, self._fast_entity_schema, raise_errors=False, strict=True):
            return
        self.product.validate_entity(entity)  # raises with the field path; passes e.g. omitted defaults

    def _key_of(self, entity: dict) -> str:
        if self._single_key is not None:
            value = entity[self._single_key]
            return value if type(value) is str else str(value)
        return self.product.key_of(entity)

    def _produce(self, producer: Producer, key: str, value: bytes | None, headers: list, callback: Any) -> None:
        while True:
            try:
                producer.produce(self.topic, value, key.encode(), headers=headers, on_delivery=callback)
                break
            except BufferError:  # the local queue is full: let deliveries drain, then retry
                producer.poll(0.05)
            except KafkaException as exc:
                raise PublisherError(f"cannot send to {self.topic}: {exc}") from None
        producer.poll(0)

    # -- waiting ---------------------------------------------------------------
    def _require_open(self) -> Producer:
        if self._producer is None:
            raise PublisherError("the publisher is not open: use `with Publisher(...) as pub:` or call open()")
        return self._producer

    def _wait_for(self, handle: DeliveryHandle, timeout: float | None) -> None:
        producer = self._require_open()
        deadline = time.monotonic() + (timeout if timeout is not None else self._delivery_timeout_s + _SYNC_GRACE_S)
        while not handle._done:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"event {handle.event_id} (key {handle.key!r}) was not acknowledged by "
                                   f"{self.topic} in time")
            producer.poll(min(left, 0.1))

    def flush(self, timeout: float | None = None) -> None:
        """Wait for every outstanding event; raise DeliveryError listing those that failed."""
        producer = self._require_open()
        limit = timeout if timeout is not None else self._delivery_timeout_s + _SYNC_GRACE_S
        remaining = producer.flush(limit)
        failures, self._failures = self._failures, []
        if remaining:
            failures.append(DeliveryFailure("?", "?", f"{remaining} event(s) still unacknowledged after {limit}s"))
        if failures:
            raise DeliveryError(failures, self.topic)
