"""Faust's aiokafka transport: two costs of its consumer taken out, and its defects around acks.

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

**No ack for a message no stream took** (:meth:`_Consumer.ack`): Faust acknowledges the
messages it skips during a rebalance or a suspended flow, which let a commit pass
messages that were never processed.

**Crash points** around the offset commit (``commit.before``, ``commit.after``) for the
crash tests (:mod:`dataplatform.crash_points`); free when none is armed.

(The producer's patches are in :mod:`.producer`; where streams start after a rebalance, in
:mod:`.recovery`; the tables, in :mod:`.tables`.)

Used through :func:`broker_url`, which names this transport's scheme.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any

from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer, Transport
from mode.services import WaitResults

from dataplatform.crash_points import crash_point
from dataplatform.stream_processors.engine.faust_patches.producer import _Producer
from dataplatform.stream_processors.engine.faust_patches.recovery import HeldStreams, membership_lost, seek_to_committed

FETCH_MAX_WAIT_MS = 100
SCHEME = "dataplatform-kafka"


class _ConsumerThread(AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS   # read when the consumer starts its fetcher
        return consumer

    async def seek_to_committed(self) -> Any:
        return await self.call_thread(seek_to_committed, self._ensure_consumer())

    async def membership_lost(self) -> str | None:
        return await self.call_thread(membership_lost, self._ensure_consumer())


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


class ProcessorTransport(Transport):
    """The aiokafka transport with :data:`FETCH_MAX_WAIT_MS` as the consumer's fetch wait,
    deliveries that complete at once not wrapped in tasks, and the producer of :mod:`.producer`."""

    Consumer = _Consumer
    Producer = _Producer


TRANSPORTS.aliases[SCHEME] = f"{__name__}:ProcessorTransport"


def broker_url(bootstrap: str) -> str:
    """Faust's broker URL for a bootstrap list ("host:port,host:port") on this transport."""
    return ";".join(f"{SCHEME}://{h}" for h in bootstrap.split(","))
