"""The batching sink: consume data product topics, write in batches, checkpoint explicitly.

Like Quix Streams' sink base, a sink here owns its checkpoints. The Kafka group only
spreads partitions over the instances; where to resume is read from the sink's own store
(the database, the Parquet files) when partitions are assigned, and the store is updated
in the same step that makes the rows durable. So a crash anywhere neither loses nor
duplicates rows. Offsets are committed to Kafka too, but only after the rows are durable
and only so that ``kafka-consumer-groups`` shows the lag.

Subclasses implement :meth:`BatchingSink.stored_offsets`, :meth:`BatchingSink.prepare`
(one message to whatever the store writes; raise to dead-letter it) and
:meth:`BatchingSink.write_batch` (rows and offsets, durably, at once).

It reads through the one consumer of product topics,
:class:`~dataplatform.product_io.reader.ProductReader`, as a group member whose
``on_assign`` hook seeks to the offsets in the store and whose ``on_unreadable`` hook
dead-letters a record it cannot decode. It takes messages as they come and has the reader
decode each one as the batch is written, next to its mapping (the fastest order). This module is the batch/checkpoint
loop only; what a sink maps is in :mod:`.records`, what it does with a record it cannot read
or map is in :mod:`.poison`, and how it waits out a store that is down is in :mod:`.retrying`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from confluent_kafka import KafkaException, Message

from dataplatform.config import Settings, get_settings
from dataplatform.instance_ids import claim_instance_id
from dataplatform.kafka.connection import check_connection
from dataplatform.kafka.reachability import KafkaReachability
from dataplatform.metrics import SINK_COMMIT_SECONDS, SINK_ROWS
from dataplatform.product_io.dead_letters import DeadLetterQueue
from dataplatform.product_io.reader import Position, ProductReader
from dataplatform.product_io.serialization import registry_client
from dataplatform.products.envelope import event_id_of
from dataplatform.products.product import DataProduct
from dataplatform.repeats import RepeatFilter
from dataplatform.sinks.columns import entity_schema_of_envelope, personal_data_policy
from dataplatform.sinks.crash_points import crash_point
from dataplatform.sinks.poison import dead_letter, is_poison
from dataplatform.sinks.records import Batch, SinkRecord, TopicPartitionKey, resolve_products
from dataplatform.sinks.retrying import SinkStopped, retry_until_stopped

log = logging.getLogger(__name__)


class BatchingSink(ABC):
    """Consume topics with a Kafka group and write them in checkpointed batches."""

    default_group: ClassVar[str] = "dataplatform-sink"

    def __init__(self, settings: Settings | None = None, *, topics: Sequence[str] = (),
                 products: Sequence[DataProduct] = (), group: str | None = None,
                 batch_size: int = 2000, batch_timeout: float = 1.0, bootstrap: str | None = None,
                 registry_url: str | None = None, instance_id: str | None = None,
                 products_root: Any = None, consumer_overrides: dict[str, object] | None = None,
                 topic_products: Mapping[str, DataProduct] | None = None, allow_personal: Sequence[str] = ()) -> None:
        self.settings = settings or get_settings()
        self.products = resolve_products(topics, products, products_root, topic_products)
        # each topic's personal-data policy: fields dropped, or hashed for --allow-personal
        self.policies = {t: personal_data_policy(self.settings, p, set(allow_personal)) for t, p in self.products.items()}
        self.group = group or self.default_group
        self.batch_size = batch_size
        self.batch_timeout = batch_timeout
        self.bootstrap = bootstrap
        self.registry = registry_client(registry_url, self.settings)
        self.instance_id = instance_id
        self.consumer_overrides = consumer_overrides or {}
        self.dead_letters = DeadLetterQueue(self.group, bootstrap, self.settings)
        self.repeats = RepeatFilter()   # an event re-sent after its producer crashed is written once
        self.kafka = KafkaReachability(self.group, log)   # says when it waits for brokers, not for events
        self._stop = threading.Event()
        self._reader: ProductReader | None = None
        self._pending: list[Message] = []
        self._batch: Batch | None = None   # the batch being written, for the unreadable hook
        self.rows_written = 0
        self.batches_written = 0

    # -- what subclasses provide ------------------------------------------------
    def open(self) -> None:
        """Prepare the store (create tables, folders) before consuming."""

    def close(self) -> None:
        """Release the store."""

    @abstractmethod
    def stored_offsets(self, topic: str, partitions: list[int]) -> dict[int, int]:
        """The next offset to read per partition, from the sink's own store (missing: from the start)."""

    @abstractmethod
    def prepare(self, record: SinkRecord) -> Any:
        """Turn one decoded record into what :meth:`write_batch` writes; raise to dead-letter it."""

    @abstractmethod
    def write_batch(self, batch: Batch) -> None:
        """Make the batch's items and its next offsets durable together, or raise."""

    def entity_schema(self, topic: str, schema_id: int | None) -> dict:
        """The entity schema a record was written with: its writer's, from the registry, or
        the product's own for a record with no schema id."""
        if schema_id is None:
            return self.products[topic].entity_schema
        return entity_schema_of_envelope(json.loads(self.registry.get_schema(schema_id).schema_str))

    def is_transient(self, exc: BaseException) -> bool:
        """Errors worth waiting out (store unreachable, locked) rather than crashing."""
        return isinstance(exc, (OSError, TimeoutError))

    def on_tick(self) -> None:
        """Called on every turn of the consume loop (at least every 0.2 s), between batches:
        time-based work such as rolling files."""

    #: Whether :meth:`write_batch` makes its rows durable (then counted in ``sink_rows_total``
    #: there); a sink that holds rows back counts them itself when they are.
    rows_durable_when_written = True

    def durable_offsets(self, batch: Batch) -> dict[TopicPartitionKey, int]:
        """What :meth:`write_batch` made durable, per partition (a sink that holds rows back
        across batches says less than the batch's next offsets)."""
        return batch.next_offsets

    def partitions_revoked(self, partitions: set[TopicPartitionKey]) -> None:
        """Partitions taken away: forget what is held of them (the next owner resumes from the store)."""

    # -- running -------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self, stop_event: threading.Event | None = None) -> None:
        """Consume and write until ``stop_event`` (or :meth:`stop`) is set; writes what it holds first."""
        if stop_event is not None:
            self._stop = stop_event
        self.retrying(self.open)
        check_connection(self.bootstrap, self.settings)  # fail fast on a wrong password or certificate
        claimed = None if self.instance_id else claim_instance_id(self.group, self.settings.dataplatform_home)
        self._reader = reader = ProductReader(
            self.products, Position.committed(self.group), registry=self.registry, bootstrap=self.bootstrap,
            settings=self.settings, show_personal=True, skip_unreadable=True,   # personal data: the sink's policy
            on_assign=self._on_assign, on_revoke=self._on_revoke, on_unreadable=self._on_unreadable,
            **{"enable.partition.eof": False, **self.kafka.consumer_config(), **self.consumer_overrides,
               "group.instance.id": self.instance_id or claimed.value})   # static membership: back at once after a crash
        log.info("%s consuming %s as group %s", type(self).__name__, ", ".join(self.products), self.group)
        started = time.monotonic()
        try:
            while not self._stop.is_set():
                messages = reader.poll_messages(timeout=0.2, max_records=max(1, self.batch_size - len(self._pending)))
                self._pending.extend(messages)   # after the poll: its hooks may have changed the list
                if not self._pending:
                    started = time.monotonic()
                elif len(self._pending) >= self.batch_size or time.monotonic() - started >= self.batch_timeout:
                    self.flush()
                    started = time.monotonic()
                self.on_tick()
            self.flush(stopping=True)
        finally:
            reader.close()
            self.dead_letters.close()
            self.close()
            if claimed is not None:
                claimed.release()

    def flush(self, stopping: bool = False) -> None:
        """Dead-letter the poison, write the rest with their offsets, then tell Kafka."""
        if not self._pending:
            return
        messages, self._pending = self._pending, []
        self._batch = batch = Batch()
        for msg in messages:
            tp = (msg.topic(), msg.partition())
            batch.next_offsets[tp] = msg.offset() + 1
            batch.rows.setdefault(tp, 0)
            read = self._reader.read(msg)
            if read is None:
                continue   # dead-lettered by _on_unreadable
            try:
                if not self.repeats.first_time(read.topic, event_id_of(read.value)):
                    continue   # an exact repeat (same event id) of an event written already
                item = self.prepare(SinkRecord.of(read, self.products[read.topic]))
            except Exception as exc:  # noqa: BLE001 - classified by _dead_letter
                self._dead_letter(msg, exc, read.value)
                continue
            batch.items.append(item)
            batch.rows[tp] += 1
        self.dead_letters.flush()
        started = time.monotonic()
        try:
            self.retrying(lambda: self.write_batch(batch))
        except SinkStopped:
            if not stopping:
                raise
            log.warning("stopped before the last batch was written; it will be read again on restart")
            return
        crash_point("batch.committed")
        self.rows_written += len(batch.items)
        self.batches_written += 1
        SINK_COMMIT_SECONDS.labels(self.group).observe(time.monotonic() - started)
        if self.rows_durable_when_written:
            for (topic, _partition), rows in batch.rows.items():
                SINK_ROWS.labels(self.group, topic).inc(rows)
        self.commit_offsets(self.durable_offsets(batch))

    def _dead_letter(self, msg: Message, exc: Exception, value: dict | None = None) -> None:
        """A record of the batch that failed: dead-lettered if the failure is its own, else
        raised (read again on restart)."""
        if not is_poison(exc) or self.is_transient(exc):
            raise exc
        self._batch.errors[(msg.topic(), msg.partition())] = dead_letter(
            self.dead_letters, msg, exc, self.products[msg.topic()], value)

    def retrying(self, fn):
        """Call ``fn`` until it succeeds, backing off on transient errors, until asked to stop."""
        return retry_until_stopped(fn, self.is_transient, self._stop)

    # -- the product reader's hooks --------------------------------------------------
    def _on_assign(self, partitions: list[TopicPartitionKey]) -> dict[TopicPartitionKey, int]:
        """Where each assigned partition starts: the store's offsets (the rest from the beginning)."""
        by_topic: dict[str, list[int]] = {}
        for topic, partition in partitions:
            by_topic.setdefault(topic, []).append(partition)
        stored: dict[TopicPartitionKey, int] = {}
        for topic, parts in by_topic.items():
            for part, offset in self.retrying(lambda t=topic, ps=parts: self.stored_offsets(t, ps)).items():
                stored[(topic, part)] = offset
        log.info("assigned %s", ", ".join(f"{t}[{p}]@{stored.get((t, p), 'beginning')}" for t, p in partitions))
        return stored

    def _on_revoke(self, gone: set[TopicPartitionKey]) -> None:
        """Drop what we hold of revoked partitions: the next owner resumes from the store."""
        self._pending[:] = [m for m in self._pending if (m.topic(), m.partition()) not in gone]
        self.partitions_revoked(gone)

    def _on_unreadable(self, msg: Message, exc: Exception) -> None:
        """A message of the batch the reader cannot decode: dead-lettered, or raised if the
        failure is not the message's (registry unreachable)."""
        self._dead_letter(msg, exc)

    def commit_offsets(self, durable: Mapping[TopicPartitionKey, int]) -> None:
        """Tell Kafka what is durable, only so that lag tools show it: the store is the truth."""
        if self._reader is None or not durable:
            return
        try:
            self._reader.commit_offsets(durable, asynchronous=True)
        except KafkaException as exc:  # only for lag display; the store is the truth
            log.debug("commit for visibility failed: %s", exc)
