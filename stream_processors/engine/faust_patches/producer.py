"""Faust's aiokafka producer: a flush that keeps its promise, and record batches.

**A flush that keeps its promise.** Before committing offsets (at-least-once), Faust
calls ``producer.flush()``, which first drains its own buffer of table changelog writes
(``send_soon``). Faust's ``ProducerBuffer.flush`` gives up when no message leaves the
buffer within 0.1 s, which happens whenever the client's queue is full during a backlog,
and the commit then goes ahead with changelog writes still buffered: a worker killed
just after lost those state changes for good while their input offsets were committed
(issue "nothing lost": 11 units and 22 cases missing in one crash run). Here the buffer's
flush waits until every message buffered before it has been handed to the client, the
client's flush until each is acknowledged, and a send that failed makes the flush raise,
so the offsets are never committed past a lost write. The processor's own step barrier
(:func:`..checkpoint.durable`) is the same flush.

**Record batches.** Faust sends every record through its whole send path: a
``FutureMessage``, the serializer registry, the topic's publish and one aiokafka send, each
with its future and callbacks. The processor knows a step's records at once (its table
writes, its repartition messages, its outputs), so :meth:`_Producer.send_records` and
:meth:`_Producer.send_keyed` queue them as aiokafka record batches, one future per batch;
keyed records go to the partition aiokafka's default partitioner gives their key, as a
send one by one would. A batch that fails is recorded like a failed send.

**Idempotence.** Faust asks aiokafka for ``enable_idempotence`` only inside transactions
(``exactly_once``). Without it a send retried across a broker failover can be written twice,
or after a later batch of the same partition: a changelog would then end on an older value
of a key, and compaction would keep that one. Every producer of the platform is idempotent
with ``acks=all`` (the SDK, the relay, the dead letters through
:func:`dataplatform.kafka_config.reliable_producer_config`), so the processor's is too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from faust.exceptions import ProducerSendError
from faust.transport.drivers.aiokafka import Producer
from faust.transport.producer import ProducerBuffer

Record = tuple[bytes, bytes | None]   # key, value (None: a tombstone)


@dataclass
class Delivery:
    """The record batches one :meth:`_Producer.send_records` queued, each with its record count."""

    batches: list[tuple[asyncio.Future, int]]

    def done(self) -> bool:
        return all(fut.done() for fut, _ in self.batches)

    def last_offset(self) -> int:
        """The offset of the last record (once done; raises what a failed batch raised)."""
        for fut, _ in self.batches:
            fut.result()
        last, count = self.batches[-1]
        return last.result().offset + count - 1


class DrainingBuffer(ProducerBuffer):
    """Faust's producer buffer whose :meth:`flush` returns once every message put before it
    was called has been handed to the client (or raises if one could not be).

    It waits for those messages only, not for an empty buffer: agents keep putting table
    writes while a flush waits, and a buffer that is never empty must not hold a commit
    (or a step's barrier) back for ever. Messages leave in the order they were put, by one
    task, so counting them is enough.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        self._put_count = self._sent_count = 0
        self._progress = asyncio.Event()
        self._failure: BaseException | None = None

    def put(self, fut: Any) -> None:
        self._put_count += 1
        super().put(fut)

    async def _send_pending(self, fut: Any) -> None:
        try:
            await super()._send_pending(fut)
        except Exception as exc:  # noqa: BLE001 - kept for flush to raise; the send loop goes on
            self._failure = self._failure or exc
        finally:
            self._sent_count += 1
            self._progress.set()

    async def flush(self) -> None:
        target = self._put_count
        while self._sent_count < target and self._failure is None:
            if self.should_stop or self.state not in ("init", "running"):
                raise ProducerSendError(f"cannot flush: the producer buffer is {self.state} "
                                        f"with {target - self._sent_count} message(s) not sent")
            self._progress.clear()
            try:
                await asyncio.wait_for(self._progress.wait(), timeout=1.0)
            except asyncio.TimeoutError:
                continue
        if self._failure is not None:
            raise ProducerSendError(f"a buffered message could not be sent: {self._failure!r}") from self._failure


class _Producer(Producer):
    """Faust's aiokafka producer with a :class:`DrainingBuffer` and a flush that raises
    when any send since the worker started has failed (the worker must not commit)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.buffer = DrainingBuffer(loop=self.loop, beacon=self.beacon)
        self.buffer.app = self.app
        self._failure: BaseException | None = None

    async def send(self, *args: Any, **kwargs: Any) -> Any:
        fut = await super().send(*args, **kwargs)
        fut.add_done_callback(self._record_failure)
        return fut

    def _settings_extra(self) -> Mapping[str, Any]:
        return {**super()._settings_extra(), "acks": "all", "enable_idempotence": True}

    def _record_failure(self, fut: asyncio.Future) -> None:
        if self._failure is None and not fut.cancelled() and fut.exception() is not None:
            self._failure = fut.exception()

    async def send_records(self, topic: str, partition: int, records: list[Record]) -> Delivery:
        """Queue ``(key, value)`` records for one partition, in order, as aiokafka record batches
        (one future per batch). A batch that fails is recorded like a failed send: the next
        flush raises."""
        producer = self._ensure_producer()
        delivery = Delivery([])
        batch = producer.create_batch()
        for key, value in records:
            if batch.append(key=key, value=value, timestamp=None) is None:   # full: send it, start the next
                delivery.batches.append(await self._send_batch(producer, batch, topic, partition))
                batch = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)
        delivery.batches.append(await self._send_batch(producer, batch, topic, partition))
        return delivery

    async def send_keyed(self, topic: str, records: list[Record]) -> None:
        """Queue keyed records on the partitions aiokafka's default partitioner gives their keys,
        as record batches, in order within each partition."""
        producer = self._ensure_producer()
        await producer.client._wait_on_metadata(topic)
        by_partition: dict[int, list[Record]] = {}
        for key, value in records:
            partition = producer._partition(topic, None, None, None, key, value)
            by_partition.setdefault(partition, []).append((key, value))
        for partition, part in by_partition.items():
            await self.send_records(topic, partition, part)

    async def _send_batch(self, producer: Any, batch: Any, topic: str, partition: int) -> tuple[asyncio.Future, int]:
        batch.close()
        count = batch.record_count()
        fut = await producer.send_batch(batch, topic, partition=partition)
        fut.add_done_callback(self._record_failure)
        return fut, count

    async def flush(self) -> None:
        await super().flush()
        if self._failure is not None:
            raise ProducerSendError(f"a message was not delivered: {self._failure!r}") from self._failure
