"""Put N entities into a processor's state without pushing N events through it.

At the processor's ~1.5k events/s, a million events would take a quarter of an hour per
benchmark run. Instead, this module runs the processor's own plain-Python steps over N
create events, in the processor's batches of 1,000, and writes what a worker would have
written to Kafka, record for record:

* stage 1: each entity's state (:func:`entity_step.decide`) to its ``entities-*`` changelog,
  on the partition of the input record it came from (the partition librdkafka's default
  partitioner gives the entity's key, as the services' producer would);
* the repartition messages (:func:`entity_step.group_message`, one per group and batch) to
  the repartition topic, on the partition Faust's producer gives the group code;
* stage 2: each step's member writes and head (:func:`group_step.step_group`) to the
  ``groups`` changelog, on the group's partition, members before their head;
* the app's committed offsets: the end of every repartition partition, so a worker
  started on this state applies nothing again.

Table keys and values go through Faust's own JSON codec, as the tables' serializers
write them (Faust serializes a ``str`` key of a table as JSON), repartition keys are raw; nothing is compressed (Faust's producer does not compress). The input topics
stay empty (nothing there is ever read again: their committed offsets are where the next
event will land) and the derived figures and warnings the steps produced are not written
(a restart never reads them).
"""

from __future__ import annotations

import datetime as dt
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka.partitioner import DefaultPartitioner
from confluent_kafka import Consumer, Producer, TopicPartition
from faust.serializers import codecs

from bench.processor_run import create_events
from dataplatform.kafka_config import client_config
from dataplatform.products.product import get_product
from dataplatform.stream_processors.core.compiled import CompiledDerivation
from dataplatform.stream_processors.config import GROUPS_TABLE, ProcessorConfig, entity_table
from dataplatform.stream_processors.core.entity_step import by_group, decide, group_message
from dataplatform.stream_processors.core.group_state import GroupState
from dataplatform.stream_processors.core.group_step import step_group
from dataplatform.stream_processors.core.group_table import HeldGroup

BATCH = 1000   # the processor's default batch size: one repartition message per group per batch


@dataclass
class SeededState:
    entities: int
    changelog_records: int
    repartition_messages: int
    seconds: float


def input_partition(key: str, partitions: int) -> int:
    """The partition librdkafka's default partitioner (``consistent_random``: CRC-32 of the
    key) gives a keyed record: where the services' producer put the entity's events."""
    return zlib.crc32(key.encode()) % partitions


def faust_partition(key: str, partitions: int) -> int:
    """The partition Faust's producer (aiokafka's default partitioner) gives a key."""
    every = list(range(partitions))
    return DefaultPartitioner()(key.encode(), every, every)


def seed_state(config: ProcessorConfig, n: int, areas: list[tuple[str, str]], today: dt.date) -> SeededState:
    """Write the state a worker of ``config`` would hold after ``n`` creates (topics must exist)."""
    started = time.monotonic()
    compiled, parts = CompiledDerivation(config.spec), config.partitions
    products = {p: get_product(p) for p in config.inputs}
    producer = Producer({**client_config(config.bootstrap), "acks": "all", "enable.idempotence": True,
                         "linger.ms": 50, "batch.num.messages": 10_000, "queue.buffering.max.messages": 2_000_000,
                         "queue.buffering.max.kbytes": 2_000_000})
    contributions = config.contributions_topic
    next_offset = [0] * parts   # the repartition topic is new: its offsets count from 0
    held: dict[str, HeldGroup] = {}
    records = messages = 0

    def send(topic: str, key: str, value: object, partition: int) -> None:
        nonlocal records
        body = None if value is None else codecs.dumps("json", value)
        # a table's keys go through JSON like its values (Faust picks "json" for key_type=str);
        # the repartition topic's keys are raw (its topic says key_serializer="raw")
        raw_key = key.encode() if topic == contributions else codecs.dumps("json", key)
        while True:
            try:
                producer.produce(topic, key=raw_key, value=body, partition=partition)
                break
            except BufferError:   # the local queue is full: let the client send some
                producer.poll(0.05)
        records += 1

    batch: list[tuple[str, dict]] = []
    for event in create_events(n, areas, today):
        batch.append(event)
        if len(batch) == BATCH:
            messages += _one_batch(compiled, config, products, batch, held, next_offset, send)
            batch = []
            producer.poll(0)
    if batch:
        messages += _one_batch(compiled, config, products, batch, held, next_offset, send)
    if producer.flush(300):
        raise RuntimeError("state seeding: records still unsent after 300 s")
    _commit_end(config, contributions, next_offset)
    records -= messages   # the repartition messages are not changelog records
    return SeededState(n, records, messages, round(time.monotonic() - started, 1))


def _one_batch(compiled: CompiledDerivation, config: ProcessorConfig, products: dict, batch: list[tuple[str, dict]],
               held: dict[str, HeldGroup], next_offset: list[int], send: Callable[[str, str, object, int], None]) -> int:
    """Stage 1 then stage 2 for one batch of creates, as a worker does it; repartition messages sent."""
    parts, now_ms = config.partitions, int(time.time() * 1000)
    moves = []
    for product, entity in batch:
        entity_id = products[product].key_of(entity)
        entity_key = f"{compiled.inputs[product].role}:{entity_id}"
        decision = decide(compiled, product, entity_key, "c", entity, 1, now_ms, None)
        send(config.changelog_topic(entity_table(product)), entity_key, decision.state,
             input_partition(entity_id, parts))
        moves += decision.moves
    sent = 0
    for code, group_moves in by_group(moves).items():
        message, partition = group_message(group_moves, now_ms), faust_partition(code, parts)
        offset = next_offset[partition]
        next_offset[partition] += 1
        send(config.contributions_topic, code, message, partition)
        sent += 1
        group = held.get(code) or HeldGroup(GroupState(code, ""))
        step = step_group(compiled, group, [(offset, message)])
        if step is None:
            continue
        held.setdefault(code, group)
        for key, value in [*step.members, step.head]:
            send(config.changelog_topic(GROUPS_TABLE), key, value, partition)
    return sent


def _commit_end(config: ProcessorConfig, contributions: str, next_offset: list[int]) -> None:
    """Commit the end of the repartition topic (checked against the broker) and the start
    of the empty inputs for the app's group: where a worker of this state goes on from."""
    consumer = Consumer({**client_config(config.bootstrap), "group.id": config.app_id, "enable.auto.commit": False})
    try:
        ends = [consumer.get_watermark_offsets(TopicPartition(contributions, p), timeout=30)[1]
                for p in range(config.partitions)]
        if ends != next_offset:
            raise RuntimeError(f"repartition topic ends at {ends}, expected {next_offset}")
        offsets = [TopicPartition(contributions, p, end) for p, end in enumerate(ends)]
        offsets += [TopicPartition(config.topic(name), p, 0) for name in config.inputs for p in range(config.partitions)]
        consumer.commit(offsets=offsets, asynchronous=False)
    finally:
        consumer.close()
