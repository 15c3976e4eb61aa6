"""Seeking a partition back to a committed offset of 0, on the real broker
(stream_processors/engine/faust_patches/recovery.py): aiokafka's own ``seek_to_committed`` leaves it where it is."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition
from confluent_kafka import Producer

from dataplatform.kafka_config import client_config
from dataplatform.stream_processors.engine.faust_patches.recovery import seek_to_committed
from tests.support.kafka import create_topic, unique_name


def topic_of(bootstrap: str, records: int) -> str:
    """A new topic holding ``records`` records at offsets 0, 1, ..."""
    topic = create_topic(bootstrap, unique_name("seek"))
    producer = Producer(client_config(bootstrap))
    for i in range(records):
        producer.produce(topic, key=b"k", value=str(i).encode())
    assert producer.flush(30) == 0
    return topic


def test_a_committed_offset_of_0_is_seeked_to(bootstrap):
    topic = topic_of(bootstrap, 5)
    tp = TopicPartition(topic, 0)

    async def positions() -> tuple[int, int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=unique_name("seek-zero"),
                                    enable_auto_commit=False, auto_offset_reset="earliest")
        await consumer.start()
        try:
            consumer.assign([tp])
            await consumer.commit({tp: 0})

            async def read_all() -> None:        # fetched early: the position moves to 5
                loop = asyncio.get_running_loop()
                deadline = loop.time() + 30
                while await consumer.position(tp) < 5 and loop.time() < deadline:
                    await consumer.getmany(tp, timeout_ms=500)

            await read_all()
            await consumer.seek_to_committed(tp)          # aiokafka's own
            theirs = await consumer.position(tp)
            await read_all()
            await seek_to_committed(consumer)
            return theirs, await consumer.position(tp)
        finally:
            await consumer.stop()

    theirs, ours = asyncio.run(positions())
    assert theirs == 5      # the records before it would never be fetched again
    assert ours == 0


def test_the_broker_probe_finds_the_first_record_at_or_after_an_offset(bootstrap):
    from dataplatform.stream_processors.engine.continuity import broker_probe

    topic = topic_of(bootstrap, 3)
    probe = broker_probe(bootstrap)
    assert [probe(topic, 0, offset) for offset in (0, 2)] == [0, 2]
    assert probe(topic, 0, 3) is None        # nothing there yet
