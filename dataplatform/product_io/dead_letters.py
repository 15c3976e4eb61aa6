"""The dead-letter topic: where a sink or the processor puts records it cannot decode or map, and carries on.

A poison record must not stop a sink (every later record would wait behind it) nor vanish
silently. It is copied as-is to its dead-letter topic (``<topic>.dlq``) with headers saying where it came from and
why it failed; the error message is scrubbed of any personal values the sink knows about.
The copy is flushed before the sink stores the offset past it, so nothing is lost.

This module is the one place that knows what a dead letter looks like, so that the sinks,
the processor, the platform and ``dataplatform consume`` agree:

- headers: :func:`dead_letter_headers` builds them for everyone (a sink adds
  ``dlq.sink.group``, the processor ``dlq.processor.app``, a bridge ``dlq.bridge``, its reason
  and the SQS and SNS message ids, through its ``extra``);
- topics: :func:`ensure_dead_letter_topics` is the only code that creates one. The rule: a
  dead-letter topic has **the same partition count as its source topic**, read from the
  cluster, the platform's replication (:func:`dataplatform.topics.replication`, as every
  topic), and keeps records for 30 days. Mirroring the source keeps a key's dead letters in
  as many partitions as its events (no hot single partition when a bad producer floods it),
  whoever creates it first (``dataplatform run``, the processor, or a sink meeting its first poison
  record); 30 days leaves time to look at a record and replay it once fixed.

Once per group: a sink (or processor) that crashed after dead-lettering a record and
before storing its offset meets the record again when it restarts. The first time it
writes to a dead-letter topic, it reads which source records its group already put there
(:func:`already_dead_lettered`) and does not send those again.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Mapping

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from dataplatform.config import Settings
from dataplatform.kafka_config import client_config, reliable_producer_config
from dataplatform.product_io.names import dead_letter_topic
from dataplatform.topics import TopicSpec, create_missing, wait_for_topics, watermarks

log = logging.getLogger(__name__)
MAX_ERROR_CHARS = 500
RETENTION_MS = 30 * 86_400_000

H_SOURCE_TOPIC = "dlq.source.topic"
H_SOURCE_PARTITION = "dlq.source.partition"
H_SOURCE_OFFSET = "dlq.source.offset"
H_ERROR_CLASS = "dlq.error.class"
H_ERROR_MESSAGE = "dlq.error.message"
H_SINK_GROUP = "dlq.sink.group"
H_PROCESSOR = "dlq.processor.app"
H_BRIDGE = "dlq.bridge"                      # a bridge's dead letters: which bridge, why, which message
H_REASON = "dlq.reason"
H_SQS_MESSAGE_ID = "dlq.sqs.message_id"
H_SNS_MESSAGE_ID = "dlq.sns.message_id"


def dead_letter_headers(topic: str, partition: int, offset: int, error_class: str, error_message: str,
                        extra: Mapping[str, str] | None = None) -> list[tuple[str, bytes]]:
    """The headers of a dead letter: where the record came from and why it failed (the
    message already scrubbed, see :func:`scrub`), then ``extra`` (who dead-lettered it)."""
    return [
        (H_SOURCE_TOPIC, topic.encode()),
        (H_SOURCE_PARTITION, str(partition).encode()),
        (H_SOURCE_OFFSET, str(offset).encode()),
        (H_ERROR_CLASS, error_class.encode()),
        (H_ERROR_MESSAGE, error_message.encode("utf-8")),
        *((name, value.encode()) for name, value in (extra or {}).items()),
    ]


def ensure_dead_letter_topics(sources: Iterable[str], bootstrap: str | None = None, settings: Settings | None = None,
                              timeout: float = 30.0) -> list[str]:
    """Create the dead-letter topic of each source topic when missing, with the source's
    partition count (the rule above); the names created. The sources
    must exist: their layout is waited for up to ``timeout`` seconds (a topic just created
    takes a moment to appear in the metadata)."""
    sources = list(sources)
    admin = AdminClient(client_config(bootstrap, settings))
    topics, missing = wait_for_topics(admin, sources, timeout)
    if missing:
        raise LookupError(f"cannot create dead-letter topics for {', '.join(missing)}: no such topic after "
                          f"{timeout}s; create the source topic first")
    wanted = []
    for source in sources:
        wanted.append(TopicSpec(dead_letter_topic(source), len(topics[source].partitions),
                                {"retention.ms": str(RETENTION_MS)}))
    return create_missing(admin, wanted, settings, timeout)


def scrub(message: str, personal_values: list[object] | None = None) -> str:
    """The error text without known personal values, cut to a readable length."""
    for value in personal_values or []:
        if value is not None and str(value):
            message = message.replace(str(value), "<personal data>")
    return message[:MAX_ERROR_CHARS]


def already_dead_lettered(dlq_topic: str, header: str, value: str, bootstrap: str | None = None,
                          settings: Settings | None = None, timeout: float = 30.0) -> set[tuple[str, int, int]]:
    """(topic, partition, offset) of every source record in ``dlq_topic`` whose ``header`` is
    ``value`` (the group or app that dead-lettered it), read up to the end as it is now."""
    return {(h[H_SOURCE_TOPIC].decode(), int(h[H_SOURCE_PARTITION]), int(h[H_SOURCE_OFFSET]))
            for h in _headers_by(dlq_topic, header, value, bootstrap, settings, timeout)}


def dead_lettered_values(dlq_topic: str, header: str, value: str, id_header: str, bootstrap: str | None = None,
                         settings: Settings | None = None, timeout: float = 30.0) -> set[str]:
    """The ``id_header`` of every dead letter in ``dlq_topic`` whose ``header`` is ``value``: the
    ledger of a dead-letterer whose sources are not Kafka records (a bridge's SQS message ids)."""
    return {h[id_header].decode() for h in _headers_by(dlq_topic, header, value, bootstrap, settings, timeout)
            if id_header in h}


def _headers_by(dlq_topic: str, header: str, value: str, bootstrap: str | None, settings: Settings | None,
                timeout: float) -> list[dict[str, bytes]]:
    """The headers of every dead letter in ``dlq_topic`` whose ``header`` is ``value``, read to the end as it is now."""
    consumer = Consumer({**client_config(bootstrap, settings), "group.id": f"dlq-ledger-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        topics = consumer.list_topics(dlq_topic, timeout=timeout).topics
        if dlq_topic not in topics or topics[dlq_topic].error is not None:
            return []
        ends = {}
        for p in topics[dlq_topic].partitions:
            low, high = watermarks(consumer, TopicPartition(dlq_topic, p), timeout)   # a new topic may lack a leader
            if high > low:
                ends[p] = high
        consumer.assign([TopicPartition(dlq_topic, p, 0) for p in ends])
        done, seen, deadline = set(), [], time.monotonic() + timeout
        while len(done) < len(ends):
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {dlq_topic} to its end within {timeout}s")
            for msg in consumer.consume(500, timeout=0.5):
                if msg.error():
                    continue
                headers = dict(msg.headers() or [])
                if headers.get(header, b"").decode() == value:
                    seen.append(headers)
                if msg.offset() >= ends[msg.partition()] - 1:
                    done.add(msg.partition())
        return seen
    finally:
        consumer.close()


class DeadLetterQueue:
    """Copies poison records to their dead-letter topic (creating it when missing) and waits for acks."""

    def __init__(self, group: str, bootstrap: str | None = None, settings: Settings | None = None) -> None:
        self.group = group
        self._bootstrap = bootstrap
        self._settings = settings
        self._producer: Producer | None = None
        self._created: set[str] = set()
        self._errors: list[KafkaError] = []
        self._ledgers: dict[str, set[tuple[str, int, int]]] = {}
        self.sent = 0

    def send(self, msg: Message, error: BaseException, personal_values: list[object] | None = None) -> str:
        """Queue a copy of ``msg``; returns the scrubbed error message that went in the headers."""
        topic = dead_letter_topic(msg.topic())
        if topic not in self._created:
            ensure_dead_letter_topics([msg.topic()], self._bootstrap, self._settings)
            self._created.add(topic)
        text = scrub(str(error) or error.__class__.__name__, personal_values)
        if (msg.topic(), msg.partition(), msg.offset()) in self._ledger(topic):
            log.info("%s[%d]@%d is already in %s (sent before a restart)", msg.topic(), msg.partition(), msg.offset(), topic)
            return text
        headers = dead_letter_headers(msg.topic(), msg.partition(), msg.offset(),
                                      f"{type(error).__module__}.{type(error).__qualname__}", text,
                                      extra={H_SINK_GROUP: self.group})
        self._producer_().produce(topic, key=msg.key(), value=msg.value(), headers=headers,
                                  on_delivery=self._on_delivery)
        self.sent += 1
        log.warning("sent %s[%d]@%d to %s: %s", msg.topic(), msg.partition(), msg.offset(), topic, text)
        return text

    def flush(self, timeout: float = 60.0) -> None:
        """Wait until every queued copy is acknowledged; raise if any was not."""
        if self._producer is None:
            return
        remaining = self._producer.flush(timeout)
        if remaining or self._errors:
            errors, self._errors = self._errors, []
            raise KafkaException(errors[0] if errors else KafkaError(KafkaError._TIMED_OUT))

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(10)

    def _on_delivery(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self._errors.append(err)

    def _ledger(self, topic: str) -> set[tuple[str, int, int]]:
        if topic not in self._ledgers:
            self._ledgers[topic] = already_dead_lettered(topic, H_SINK_GROUP, self.group, self._bootstrap,
                                                         self._settings)
        return self._ledgers[topic]

    def _producer_(self) -> Producer:
        if self._producer is None:
            self._producer = Producer(reliable_producer_config(self._bootstrap, self._settings))
        return self._producer
