"""The processor's Faust consumer: a short fetch wait, deliveries without tasks (stream_processors/engine/faust_patches/transport.py)."""

from __future__ import annotations

import asyncio

from dataplatform.stream_processors.config import ProcessorConfig
from dataplatform.stream_processors.engine.faust_patches.transport import FETCH_MAX_WAIT_MS


def test_the_processor_app_consumes_with_a_short_fetch_wait(tmp_path):
    from dataplatform.stream_processors.engine.topology import DerivationProcessor

    config = ProcessorConfig(app_id="transport-test", bootstrap="127.0.0.1:1", registry_url="http://127.0.0.1:1",
                             datadir=str(tmp_path))

    async def fetch_wait() -> int:
        app = DerivationProcessor(config).app     # no broker or registry is contacted
        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        try:
            return consumer._fetch_max_wait_ms
        finally:
            await consumer.stop()

    # Faust's own aiokafka transport hard-codes 1,500 ms, which stalls busy partitions
    assert asyncio.run(fetch_wait()) == FETCH_MAX_WAIT_MS <= 100


def _consumer_and_run(tmp_path, scenario):
    """Run ``scenario(consumer)`` on the processor app's real Faust consumer (not started)."""
    from dataplatform.stream_processors.engine.topology import DerivationProcessor

    config = ProcessorConfig(app_id="transport-test", bootstrap="127.0.0.1:1", registry_url="http://127.0.0.1:1",
                             datadir=str(tmp_path))

    async def main():
        app = DerivationProcessor(config).app
        return await scenario(app.consumer)

    return asyncio.run(main())


def test_a_delivery_that_never_waits_completes_without_a_task(tmp_path):
    import inspect

    async def scenario(consumer):
        async def deliver():
            return "delivered"

        flow = consumer.suspend_flow.wait()
        tasks_before = len(asyncio.all_tasks())
        result = await consumer.wait_first(deliver(), flow)
        return result, len(asyncio.all_tasks()) - tasks_before, inspect.getcoroutinestate(flow)

    result, new_tasks, flow_state = _consumer_and_run(tmp_path, scenario)
    assert result.results == ["delivered"] and not result.stopped
    assert new_tasks == 0
    assert flow_state == inspect.CORO_CLOSED     # the unused waitable is closed, not left pending


class _BareYield:
    def __await__(self):
        yield


def test_a_delivery_that_waits_is_carried_on_to_its_result(tmp_path):
    async def scenario(consumer):
        gate = asyncio.get_running_loop().create_future()
        steps = []

        async def deliver():
            steps.append("started")
            value = await gate                      # a full stream buffer, say
            steps.append("resumed")
            await _BareYield()                      # a bare yield to the loop, as asyncio does
            return value * 2

        asyncio.get_running_loop().call_later(0.01, gate.set_result, 21)
        result = await consumer.wait_first(deliver(), consumer.suspend_flow.wait())
        return result, steps

    result, steps = _consumer_and_run(tmp_path, scenario)
    assert result.results == [42] and not result.stopped
    assert steps == ["started", "resumed"]         # started once, not restarted


def test_a_waiting_delivery_is_abandoned_when_the_flow_is_suspended(tmp_path):
    async def scenario(consumer):
        cancelled = asyncio.Event()

        async def deliver():
            try:
                await asyncio.get_running_loop().create_future()   # never resolves
            except asyncio.CancelledError:
                cancelled.set()
                raise

        asyncio.get_running_loop().call_later(0.01, consumer.suspend_flow.set)   # a rebalance starts
        result = await consumer.wait_first(deliver(), consumer.suspend_flow.wait())
        await asyncio.wait_for(cancelled.wait(), 5)
        return result, cancelled.is_set()

    result, cancelled = _consumer_and_run(tmp_path, scenario)
    assert result.results == [True] and not result.stopped   # the flow event won, as in Faust
    assert cancelled


def test_an_error_in_a_delivery_propagates(tmp_path):
    async def scenario(consumer):
        async def deliver():
            raise ValueError("undecodable")

        try:
            await consumer.wait_first(deliver(), consumer.suspend_flow.wait())
        except ValueError as exc:
            return str(exc)

    assert _consumer_and_run(tmp_path, scenario) == "undecodable"


def _flush_run(buffer_cls, more: int = 0) -> tuple[list[int], list[int]]:
    """Put 3 messages whose sends cannot leave (a full client queue) until the flush has
    had longer than Faust's 0.1 s patience, and, with ``more``, put another message each
    time one is sent, so the buffer is never empty while the flush waits (those can leave
    only once the flush has returned: a flush that waited for them would never return);
    (sent when the flush returned, everything sent)."""
    from types import SimpleNamespace

    async def scenario():
        sent: list[int] = []
        at_flush: list[int] = []
        total, next_n = 3 + more, [3]
        queue_free, flushed, all_sent = asyncio.Event(), asyncio.Event(), asyncio.Event()

        class Channel:
            async def publish_message(self, fut, wait=False):
                await (queue_free if fut.n < 3 else flushed).wait()
                sent.append(fut.n)
                if next_n[0] < total:
                    buffer.put(message(next_n[0]))
                    next_n[0] += 1
                if len(sent) == total:
                    all_sent.set()

        def message(n):
            return SimpleNamespace(n=n, message=SimpleNamespace(channel=Channel()))

        buffer = buffer_cls(loop=asyncio.get_running_loop())
        buffer.app = SimpleNamespace(conf=SimpleNamespace(producer_threaded=False))
        await buffer.start()
        for n in range(3):
            buffer.put(message(n))
        flushing = asyncio.ensure_future(buffer.flush())
        flushing.add_done_callback(lambda _: (at_flush.extend(sent), flushed.set()))
        await asyncio.wait({flushing}, timeout=0.5)   # Faust's own flush returns within this
        queue_free.set()
        await asyncio.wait_for(flushing, timeout=10)
        await asyncio.wait_for(all_sent.wait(), timeout=10)
        await buffer.stop()
        return at_flush, sent

    return asyncio.run(scenario())


def test_a_flush_waits_for_every_message_buffered_before_it():
    from faust.transport.producer import ProducerBuffer

    from dataplatform.stream_processors.engine.faust_patches.producer import DrainingBuffer

    assert _flush_run(DrainingBuffer)[0] == [0, 1, 2]
    # Faust's own buffer gives up after 0.1 s without a message sent: a commit then went
    # ahead with table writes still buffered
    assert _flush_run(ProducerBuffer)[0] != [0, 1, 2]


def test_a_flush_is_not_held_back_by_messages_put_after_it():
    from dataplatform.stream_processors.engine.faust_patches.producer import DrainingBuffer

    at_flush, everything = _flush_run(DrainingBuffer, more=20)
    assert at_flush[:3] == [0, 1, 2] and len(at_flush) < len(everything) == 23


def test_a_message_no_stream_took_is_never_counted_as_done(tmp_path):
    from faust.types.tuples import ConsumerMessage as Message   # what the driver makes of each fetched record

    async def scenario(consumer):
        topic = "proc.hmpps.social_housing_availability.v1"
        consumer.app.topics._acking_topics.add(topic)

        def message(offset):
            return Message(topic, 0, offset, 0.0, 0, None, b"k", b"v", None)

        skipped = message(5)                 # skipped by the stream (old generation, suspended flow)
        taken = message(6)
        taken.tracked = True                 # what the stream iterator does before delivering it
        return consumer.ack(skipped), consumer.ack(taken), list(consumer._acked[skipped.tp])

    skipped, taken, acked = _consumer_and_run(tmp_path, scenario)
    # Faust's own consumer acks both, so a commit could pass offset 5 before it is processed
    assert (skipped, taken, acked) == (False, True, [6])



def test_the_processor_producer_is_idempotent_with_acks_all(tmp_path):
    """Faust asks aiokafka for idempotence only inside transactions; without it a send retried
    across a broker failover can land twice or out of order in a changelog."""
    from dataplatform.stream_processors.engine.topology import DerivationProcessor

    config = ProcessorConfig(app_id="transport-test", bootstrap="127.0.0.1:1", registry_url="http://127.0.0.1:1",
                             datadir=str(tmp_path))

    async def producer_settings():
        app = DerivationProcessor(config).app     # no broker or registry is contacted
        producer = app.producer._new_producer()
        try:
            return producer._txn_manager is not None
        finally:
            await producer.stop()

    idempotent = asyncio.run(producer_settings())
    assert idempotent, "the processor's aiokafka producer is not idempotent"
