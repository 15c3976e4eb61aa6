"""Faust's aiokafka transport, with two costs of its consumer taken out.

**Fetch wait.** Faust creates its aiokafka consumer with ``fetch_max_wait_ms=1500``
(hard-coded, not a setting). aiokafka keeps one fetch request in flight per broker, and a
request only names the partitions that had nothing buffered when it was sent; the broker
holds it until one of *those* partitions gets data, or 1.5 s. So while one input is quiet,
the other partitions of the same broker (the busy input, the repartition topic) wait up to
1.5 s between fetches: the processor measured event-to-warning latencies of 1.5 to 4 s at
a few hundred events per second, with the worker half idle, stalled on these waits. With
the wait at 100 ms a quiet partition costs at most 100 ms.

**Four tasks per message.** Faust's fetch loop hands every message to the streams with
``await self.wait_first(callback(message), self.suspend_flow.wait())``: a task for the
delivery, one for the flow event, one each for the consumer's stopped and crashed events,
an ``asyncio.wait`` over the four, then three cancellations. That bookkeeping cost more
than decoding the message (the processor went from 1,365 to about 2,400 events/s without
it). Almost every delivery finishes without ever waiting: it decodes the message and puts
the event on a stream's queue. :meth:`_Consumer.wait_first` therefore runs the delivery
until its first suspension; when it finishes there, that is the result, with no task made.
Only a delivery that has to wait (a full stream buffer, flow control during a rebalance)
goes through Faust's own ``wait_first``, which carries on from where it stopped, so a
rebalance still interrupts it exactly as before.

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
(:func:`durable`, below) is the same flush.

**No ack for a message no stream took** (:meth:`_Consumer.ack`): Faust acknowledges the
messages it skips during a rebalance or a suspended flow, which let a commit pass
messages that were never processed.

**Crash points** around the offset commit (``commit.before``, ``commit.after``) for the
crash tests (:mod:`dataplatform.stream_processors.crash_points`); free when none is armed.

(The patches to where streams start after a rebalance, and to the tables, are in :mod:`.recovery`.)

Used through :func:`broker_url`, which names this transport's scheme.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any

import faust
from faust.exceptions import ProducerSendError
from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer, Producer, Transport
from faust.transport.producer import ProducerBuffer
from mode.services import WaitResults

from dataplatform.stream_processors.crash_points import crash_point
from dataplatform.stream_processors.faust_patches.recovery import HeldStreams, seek_to_committed

FETCH_MAX_WAIT_MS = 100
SCHEME = "dataplatform-kafka"


class _ConsumerThread(AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS   # read when the consumer starts its fetcher
        return consumer

    async def seek_to_committed(self) -> Any:
        return await self.call_thread(seek_to_committed, self._ensure_consumer())


class Resumed:
    """A coroutine that was stepped once (and yielded ``yielded``), awaitable from there on.

    Awaiting it forwards what the coroutine yields to the awaiting task and what the task
    sends or throws back to the coroutine, as ``yield from`` would after the first step.
    """

    def __init__(self, coro: Coroutine, yielded: Any) -> None:
        self._coro, self._yielded = coro, yielded

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, value = self._coro, self._yielded
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # noqa: BLE001 - a cancellation or error for the coroutine
                try:
                    value = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
                continue
            try:
                value = coro.send(sent)
            except StopIteration as stop:
                return stop.value


class _Consumer(HeldStreams, Consumer):
    continuity: Any = None   # a continuity.Continuity, told of every seek

    async def seek_to_committed(self) -> Any:
        committed = await super().seek_to_committed()
        if self.continuity is not None:
            self.continuity.seeked(committed)
        return committed

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def wait_first(self, *coros: Any, timeout: Any = None) -> WaitResults:
        """Faust's ``wait_first``, without its tasks when the first coroutine never waits.

        Faust's consumer calls this only from its fetch loop, once per message, as
        ``wait_first(deliver(message), suspend_flow.wait())``. With the flow running and the
        consumer up, the delivery is stepped here; if it completes in that step, its result
        is returned as Faust's would be and the other waitables are discarded unstarted.
        """
        first, *rest = coros
        if (timeout is not None or not asyncio.iscoroutine(first) or self.suspend_flow.is_set()
                or self._stopped.is_set() or self._crashed.is_set()):
            return await super().wait_first(*coros, timeout=timeout)
        try:
            yielded = first.send(None)
        except StopIteration as done:
            _discard(rest)
            return WaitResults([first], [done.value], False)
        except BaseException:
            _discard(rest)
            raise
        return await super().wait_first(Resumed(first, yielded), *rest, timeout=timeout)

    def ack(self, message: Any) -> bool:
        """Faust's ack, refused for a message no stream took.

        Faust's stream iterator skips a message fetched before a rebalance (older
        generation) or while flow control is suspended (a rebalance, recovery, or a
        graceful stop), and acknowledges it all the same. The message is fetched and
        processed again later, but its offset already counts as done, so an offset commit
        in between passes a message whose effects were never written: a crash after it
        loses the message for good (seen in the crash tests as a departure missing from an
        area, and a worker stopped gracefully while its flow was suspended committing
        messages it had not processed). A message a stream took is marked ``tracked``
        first; one it skipped is not, and its ack is ignored here.
        """
        if not message.tracked:
            return False
        return super().ack(message)

    async def _commit(self, offsets: Any) -> bool:
        crash_point("commit.before")
        committed = await super()._commit(offsets)
        crash_point("commit.after")
        return committed


def _discard(waitables: list[Any]) -> None:
    for w in waitables:
        if asyncio.iscoroutine(w):
            w.close()   # never started: closing it avoids "coroutine was never awaited"


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

    def _record_failure(self, fut: asyncio.Future) -> None:
        if self._failure is None and not fut.cancelled() and fut.exception() is not None:
            self._failure = fut.exception()

    async def send_records(self, topic: str, partition: int, records: list[tuple[bytes, bytes | None]]) -> None:
        """Queue ``(key, value)`` records for one partition, in order, as aiokafka record batches
        (one future per batch; :mod:`.tables` says why). A batch that fails is recorded like a
        failed send: the next flush raises."""
        producer = self._ensure_producer()
        batch = producer.create_batch()
        for key, value in records:
            if batch.append(key=key, value=value, timestamp=None) is None:   # full: send it, start the next
                await self._send_batch(producer, batch, topic, partition)
                batch = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)
        await self._send_batch(producer, batch, topic, partition)

    async def _send_batch(self, producer: Any, batch: Any, topic: str, partition: int) -> None:
        batch.close()
        fut = await producer.send_batch(batch, topic, partition=partition)
        fut.add_done_callback(self._record_failure)

    async def flush(self) -> None:
        await super().flush()
        if self._failure is not None:
            raise ProducerSendError(f"a message was not delivered: {self._failure!r}") from self._failure


class ProcessorTransport(Transport):
    """The aiokafka transport with :data:`FETCH_MAX_WAIT_MS` as the consumer's fetch wait,
    deliveries that complete at once not wrapped in tasks, and a producer whose flush
    waits for every buffered write."""

    Consumer = _Consumer
    Producer = _Producer


TRANSPORTS.aliases[SCHEME] = f"{__name__}:ProcessorTransport"


async def durable(app: faust.App) -> None:
    """Wait until everything this worker has sent or written is acknowledged by the broker
    (raises if anything was lost): the barrier between a step's outputs and its state, and
    between its state and the acknowledgement of its events."""
    await app.producer.flush()


def broker_url(bootstrap: str) -> str:
    """Faust's broker URL for a bootstrap list ("host:port,host:port") on this transport."""
    return ";".join(f"{SCHEME}://{h}" for h in bootstrap.split(","))
