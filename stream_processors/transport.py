"""Faust's aiokafka transport, with a consumer that does not sit on a fetch for 1.5 s.

Faust creates its aiokafka consumer with ``fetch_max_wait_ms=1500`` (hard-coded, not a
setting). aiokafka keeps one fetch request in flight per broker, and a request only
names the partitions that had nothing buffered when it was sent; the broker holds it
until one of *those* partitions gets data, or 1.5 s. So while one input is quiet, the
other partitions of the same broker (the busy input, the repartition topic) wait up to
1.5 s between fetches: the processor measured event-to-warning latencies of 1.5 to 4 s
at a few hundred events per second, with the worker half idle, stalled on these waits.
With the wait at 100 ms a quiet partition costs at most 100 ms.

Used through :func:`broker_url`, which names this transport's scheme.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer, Transport

FETCH_MAX_WAIT_MS = 100
SCHEME = "dataplatform-kafka"


class _ConsumerThread(AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS   # read when the consumer starts its fetcher
        return consumer


class _Consumer(Consumer):
    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class ShortFetchWaitTransport(Transport):
    """The aiokafka transport with :data:`FETCH_MAX_WAIT_MS` as the consumer's fetch wait."""

    Consumer = _Consumer


TRANSPORTS.aliases[SCHEME] = f"{__name__}:ShortFetchWaitTransport"


def broker_url(bootstrap: str) -> str:
    """Faust's broker URL for a bootstrap list ("host:port,host:port") on this transport."""
    return ";".join(f"{SCHEME}://{h}" for h in bootstrap.split(","))
