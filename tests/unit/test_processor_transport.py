"""The processor's Faust app fetches with a short wait (stream_processors/transport.py)."""

from __future__ import annotations

import asyncio

from stream_processors.config import ProcessorConfig
from stream_processors.transport import FETCH_MAX_WAIT_MS


def test_the_processor_app_consumes_with_a_short_fetch_wait(tmp_path):
    from stream_processors.topology import SupplyDemandProcessor

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
