"""Where a worker's streams start after a rebalance, on the real broker
(stream_processors/engine/faust_patches/recovery.py): seeking back to a committed offset of
0, which aiokafka's own ``seek_to_committed`` leaves where it is; and a worker the group
dropped while it recovered, which must learn so before its streams resume."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition
from confluent_kafka import ConsumerGroupState, Producer
from confluent_kafka.admin import AdminClient

from dataplatform.kafka_config import client_config
from dataplatform.stream_processors.engine.faust_patches.recovery import membership_lost, seek_to_committed
from tests.support.kafka import create_topic, unique_name
from tests.support.waiting import wait_until


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


def test_a_worker_dropped_from_its_group_while_it_recovered_is_told_before_its_streams_resume(bootstrap):
    """A recovery that outlasts the session (no heartbeats reach the coordinator) leaves a
    worker that still believes it holds its partitions: the heartbeat asked before the seek
    says it does not."""
    topic, group = topic_of(bootstrap, 1), unique_name("dropped")
    admin = AdminClient(client_config(bootstrap))

    def group_is_empty() -> bool:
        (described,) = admin.describe_consumer_groups([group]).values()
        return described.result(10).state == ConsumerGroupState.EMPTY

    async def verdicts() -> tuple[str | None, str | None]:
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                                    session_timeout_ms=6000, heartbeat_interval_ms=1000)
        await consumer.start()
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60
            while not consumer.assignment() and loop.time() < deadline:
                await consumer.getmany(timeout_ms=200)
            assert consumer.assignment(), "the consumer was never given its partition"
            while_a_member = await membership_lost(consumer)
            await consumer._coordinator._stop_heartbeat_task()   # a recovery stuck past its session
            await loop.run_in_executor(None, lambda: wait_until(group_is_empty, timeout=60, interval=0.2,
                                                                message="the broker dropping the silent member"))
            return while_a_member, await membership_lost(consumer)
        finally:
            await consumer.stop()

    while_a_member, dropped = asyncio.run(verdicts())
    assert while_a_member is None
    assert dropped is not None and "no longer knows this worker" in dropped, dropped
