"""The processor's Faust consumer: a short fetch wait, deliveries without tasks (stream_processors/transport.py)."""

from __future__ import annotations

import asyncio

from dataplatform.stream_processors.config import ProcessorConfig
from dataplatform.stream_processors.transport import FETCH_MAX_WAIT_MS


def test_the_processor_app_consumes_with_a_short_fetch_wait(tmp_path):
    from dataplatform.stream_processors.topology import SupplyDemandProcessor

    config = ProcessorConfig(app_id="transport-test", bootstrap="127.0.0.1:1", registry_url="http://127.0.0.1:1",
                             datadir=str(tmp_path))

    async def fetch_wait() -> int:
        app = SupplyDemandProcessor(config).app     # no broker or registry is contacted
        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        try:
            return consumer._fetch_max_wait_ms
        finally:
            await consumer.stop()

    # Faust's own aiokafka transport hard-codes 1,500 ms, which stalls busy partitions
    assert asyncio.run(fetch_wait()) == FETCH_MAX_WAIT_MS <= 100


def _consumer_and_run(tmp_path, scenario):
    """Run ``scenario(consumer)`` on the processor app's real Faust consumer (not started)."""
    from dataplatform.stream_processors.topology import SupplyDemandProcessor

    config = ProcessorConfig(app_id="transport-test", bootstrap="127.0.0.1:1", registry_url="http://127.0.0.1:1",
                             datadir=str(tmp_path))

    async def main():
        app = SupplyDemandProcessor(config).app
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
