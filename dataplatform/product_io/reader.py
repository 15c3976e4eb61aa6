"""The one consumer of product topics: decoded, personal fields redacted, from a chosen position.

The sinks, ``dataplatform consume``, ``warnings tail``, the warnings follower, the catalogue's
freshness probe and the tests all read data products through :class:`ProductReader`, so that
a product event is decoded one way (:class:`~dataplatform.product_io.serialization.WireDecoder`),
personal fields are hidden one way (:func:`~dataplatform.products.personal_data.redact_event`),
and the consumer reaches a secured broker with the platform's own credentials
(:func:`~dataplatform.kafka_config.consumer_config`).

Where to start is a :class:`Position`: the beginning, the end, a group's committed offsets
(the group's members share the partitions and commit), or explicit offsets per partition (a
reader that keeps its own offsets, e.g. in a database, assigns every partition itself). A
group member that keeps its offsets itself (a sink) passes hooks (see :class:`ProductReader`).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient

from dataplatform.config import Settings
from dataplatform.kafka_config import consumer_config
from dataplatform.product_io.serialization import ProductSerde, WireDecoder
from dataplatform.product_io.wire import schema_id_of
from dataplatform.products.envelope import event_id_of
from dataplatform.products.personal_data import redact_event
from dataplatform.products.product import DataProduct

log = logging.getLogger(__name__)
TopicPartitionKey = tuple[str, int]
StartOffsets = Callable[[list[TopicPartitionKey]], Mapping[TopicPartitionKey, int] | None]


@dataclass(frozen=True)
class Position:
    """Where a reader starts: build one with :meth:`beginning`, :meth:`end`,
    :meth:`committed` or :meth:`at`."""

    reset: str = "earliest"      # where a partition without a committed (or given) offset starts
    group: str | None = None     # read as this consumer group, from its committed offsets
    offsets: Mapping[TopicPartitionKey, int] | None = None   # assign partitions, from these offsets
    every_partition: bool = True  # with offsets: also the partitions not named, from their beginning

    @classmethod
    def beginning(cls) -> "Position":
        return cls("earliest")

    @classmethod
    def end(cls) -> "Position":
        """Only what is published after the reader has joined."""
        return cls("latest")

    @classmethod
    def committed(cls, group: str, otherwise: str = "earliest") -> "Position":
        """Where ``group`` left off; a partition it never committed starts at ``otherwise``."""
        return cls(otherwise, group=group)

    @classmethod
    def at(cls, offsets: Mapping[TopicPartitionKey, int], every_partition: bool = True) -> "Position":
        """From these offsets; a partition not named starts at its beginning, or, without
        ``every_partition``, is not read at all."""
        return cls("earliest", offsets=dict(offsets), every_partition=every_partition)

    @property
    def assigns(self) -> bool:
        """True when the reader assigns partitions itself rather than joining a group."""
        return self.offsets is not None

    def group_id(self, name: str) -> str:
        """The group to read as: the committed one; the reader's name when it assigns
        partitions itself (it never joins the group); else a fresh group for this reader alone."""
        if self.group:
            return self.group
        return name if self.assigns else f"{name}-{uuid.uuid4().hex[:8]}"

    def assignment(self, partitions: Mapping[str, list[int]]) -> list[TopicPartition]:
        """The partitions to read, each at its offset. With ``every_partition``, every partition
        of each topic (from its beginning if no offset is given; partition 0 of a topic not
        created yet, read once it exists); without, only those named."""
        offsets = self.offsets or {}
        if not self.every_partition:
            return [TopicPartition(t, p, o) for (t, p), o in sorted(offsets.items())]
        return [TopicPartition(topic, p, offsets.get((topic, p), OFFSET_BEGINNING))
                for topic, parts in partitions.items() for p in (sorted(parts) or [0])]


@dataclass
class ProductRecord:
    """One message of a product topic, its value decoded (None for a tombstone or a topic
    read without a product) and its personal fields redacted unless asked otherwise. The
    headers and timestamp are read from the message when asked for: a sink never asks."""

    topic: str
    partition: int
    offset: int
    key: str | None
    value: dict | None
    message: Message = field(repr=False)   # the raw message, for byte checks

    @cached_property
    def headers(self) -> dict[str, str | None]:
        return {k: (v.decode() if v is not None else None) for k, v in (self.message.headers() or [])}

    @property
    def timestamp_ms(self) -> int | None:
        ts_type, ts = self.message.timestamp()
        return ts if ts_type else None

    @property
    def schema_id(self) -> int | None:
        """The registry id of the schema the value was written with (None for a tombstone)."""
        return schema_id_of(self.message.value())

    @property
    def event_id(self) -> str | None:
        return event_id_of(self.value) if self.value else self.headers.get("event_id")


class ReadError(RuntimeError):
    """The broker reported an error while reading, or a value could not be decoded."""


class ProductReader:
    """Reads product topics (``{topic: product}``; ``None`` for a topic read undecoded, e.g.
    a dead-letter topic). Close it, or use it as a context manager.

    With a group (:meth:`Position.committed`), ``on_assign(partitions)`` may return where
    each assigned partition starts (one it does not name: from its beginning; ``None``: the
    group's committed offsets) and ``on_revoke(partitions)`` is told of partitions revoked or
    lost, both while polling; ``on_unreadable(message, error)`` receives each value that
    cannot be decoded (in :meth:`poll` or :meth:`read`) instead of it being raised or skipped."""

    def __init__(self, topics: Mapping[str, DataProduct | None], position: Position, *,
                 registry: SchemaRegistryClient | None = None, name: str = "dataplatform-reader",
                 bootstrap: str | None = None, settings: Settings | None = None, show_personal: bool = False,
                 skip_unreadable: bool = False, wait_for_topics: bool = False, on_assign: StartOffsets | None = None,
                 on_revoke: Callable[[set[TopicPartitionKey]], None] | None = None,
                 on_unreadable: Callable[[Message, Exception], None] | None = None, **consumer_overrides: object) -> None:
        if registry is None and any(topics.values()):
            raise ValueError("decoding product topics needs a schema registry client")
        self.topics = dict(topics)
        self.position = position
        self.show_personal = show_personal
        self.skip_unreadable = skip_unreadable
        self.wait_for_topics = wait_for_topics   # a topic not created yet is read once it is
        self.on_assign, self.on_revoke, self.on_unreadable = on_assign, on_revoke, on_unreadable
        self.decoder = WireDecoder(registry) if registry is not None else None
        self.consumer = Consumer(consumer_config(position.group_id(name), bootstrap, settings, **{
            "auto.offset.reset": position.reset, "enable.partition.eof": True, **consumer_overrides}))
        self._at_end: set[TopicPartitionKey] = set()
        if position.assigns:
            known = self._partitions() if position.every_partition else {}
            self.consumer.assign(position.assignment(known))
        else:
            self.consumer.subscribe(list(self.topics), on_assign=self._assigned, on_revoke=self._revoked,
                                    on_lost=self._revoked)

    def _partitions(self, timeout: float = 10.0) -> dict[str, list[int]]:
        found = {}
        for topic in self.topics:
            described = self.consumer.list_topics(topic, timeout=timeout).topics.get(topic)
            found[topic] = list(described.partitions) if described is not None and described.error is None else []
        return found

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        starts = self.on_assign([(p.topic, p.partition) for p in partitions]) if self.on_assign else None
        if starts is not None:
            for p in partitions:
                p.offset = starts.get((p.topic, p.partition), OFFSET_BEGINNING)
        log.debug("assigned %s", ", ".join(f"{p.topic}[{p.partition}]@{p.offset}" for p in partitions))
        consumer.assign(partitions)

    def _revoked(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        gone = {(p.topic, p.partition) for p in partitions}
        self._at_end -= gone
        if self.on_revoke:
            self.on_revoke(gone)

    # -- reading ----------------------------------------------------------------------
    def poll(self, timeout: float = 0.5, max_records: int = 500) -> list[ProductRecord]:
        """What arrived within ``timeout`` (at most ``max_records``), decoded, in order per partition."""
        return [record for record in map(self.read, self.poll_messages(timeout, max_records)) if record is not None]

    def poll_messages(self, timeout: float = 0.5, max_records: int = 500) -> list[Message]:
        """What arrived, as :meth:`poll` but not decoded yet: for a reader that decodes each
        message with :meth:`read` where it uses it (a sink, as it writes a batch: decoding
        next to the mapping keeps the sink as fast as it was with a loop of its own)."""
        messages = []
        for msg in self.consumer.consume(num_messages=max_records, timeout=timeout):
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    self._at_end.add((msg.topic(), msg.partition()))
                else:
                    self._unreadable(msg, error)
                continue
            self._at_end.discard((msg.topic(), msg.partition()))
            messages.append(msg)
        return messages

    def read(self, msg: Message) -> ProductRecord | None:
        """``msg`` decoded; None when it cannot be, once handed to ``on_unreadable`` (or, without
        it, logged with ``skip_unreadable``; otherwise :class:`ReadError` is raised)."""
        try:
            return self.decode(msg)
        except Exception as exc:  # noqa: BLE001 - any decoding failure: handed over, skipped or raised
            if self.on_unreadable is None:
                self._unreadable(msg, exc)
            else:
                self.on_unreadable(msg, exc)
            return None

    def follow(self, stop: Callable[[], bool] = lambda: False, *, idle_timeout: float | None = None,
               until_end: bool = False, poll_timeout: float = 0.5) -> Iterator[ProductRecord]:
        """Each record as it arrives until ``stop()`` is true, nothing came for ``idle_timeout``
        seconds, or (``until_end``) every assigned partition has been read to its end."""
        last = time.monotonic()
        while not stop():
            records = self.poll(poll_timeout)
            if records:
                last = time.monotonic()
            for record in records:
                if stop():   # asked between two records (e.g. enough of them): the rest stay unread
                    return
                yield record
            if until_end and self.at_end():
                return
            if idle_timeout is not None and time.monotonic() - last > idle_timeout:
                return

    def at_end(self) -> bool:
        """True when every partition assigned to this reader has been read to its end."""
        assigned = {(tp.topic, tp.partition) for tp in self.consumer.assignment()}
        return bool(assigned) and assigned <= self._at_end

    def decode(self, msg: Message) -> ProductRecord:
        product = self.topics.get(msg.topic())
        value = self.decoder.decode(msg.value()) if product else None
        if product and not self.show_personal:
            value = redact_event(product, value)
        return ProductRecord(msg.topic(), msg.partition(), msg.offset(), ProductSerde.deserialize_key(msg.key()),
                             value, msg)

    def _unreadable(self, msg: Message, problem: KafkaError | Exception) -> None:
        """A broker error or an undecodable value: raised, or logged and skipped when asked."""
        if isinstance(problem, KafkaError):
            if problem.fatal():
                raise KafkaException(problem)
            if self.wait_for_topics and problem.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                return
        if not self.skip_unreadable:
            raise ReadError(f"reading {msg.topic()}: {problem}")
        log.warning("skipping what cannot be read at %s[%s]@%s: %s", msg.topic(), msg.partition(), msg.offset(), problem)

    # -- offsets and lifetime ---------------------------------------------------------
    def commit(self, record: ProductRecord) -> None:
        """Record in the group that ``record`` has been handled (synchronously)."""
        self.commit_offsets({(record.topic, record.partition): record.offset + 1})

    def commit_offsets(self, next_offsets: Mapping[TopicPartitionKey, int], asynchronous: bool = False) -> None:
        """Record in the group the next offset to read of each partition."""
        self.consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in next_offsets.items()],
                             asynchronous=asynchronous)

    def close(self) -> None:
        self.consumer.close()

    def __enter__(self) -> "ProductReader":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
