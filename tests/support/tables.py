"""The processor's real groups table in a unit test: no broker, the producer's sends recorded
and acknowledged at once (or failed, for the partitions in ``failing``)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from dataplatform.stream_processors.config import ProcessorConfig
from dataplatform.stream_processors.engine.faust_patches.producer import Delivery


class _Message:
    def __init__(self, partition: int) -> None:
        self.partition = partition


class Event:
    """What a table write needs of the event its values come from: its partition."""

    def __init__(self, partition: int) -> None:
        self.message = _Message(partition)


def run_with_table(tmp_path, scenario, store: str = "memory://", failing: frozenset[int] = frozenset()):
    """``scenario(table, sent)`` on the processor app's real groups table, its producer's
    ``send_records`` recording what it is given in ``sent`` and delivering it at once to
    consecutive offsets from 0 per partition (a partition in ``failing``: the batch fails)."""
    from dataplatform.stream_processors.engine.topology import DerivationProcessor

    config = ProcessorConfig(app_id="tables-test", bootstrap="127.0.0.1:1", registry_url="http://127.0.0.1:1",
                             datadir=str(tmp_path), store=store)

    async def main():
        processor = DerivationProcessor(config)   # no broker or registry is contacted
        sent: list[tuple[str, int, list]] = []
        next_offset: dict[int, int] = {}

        async def record(topic, partition, records):
            sent.append((topic, partition, list(records)))
            fut = asyncio.get_running_loop().create_future()
            if partition in failing:
                fut.set_exception(ConnectionError("broker gone"))
            else:
                fut.set_result(SimpleNamespace(offset=next_offset.get(partition, 0)))
                next_offset[partition] = next_offset.get(partition, 0) + len(records)
            return Delivery([(fut, len(records))])

        async def flush():
            pass

        processor.app.producer.send_records = record
        processor.app.producer.flush = flush
        return await scenario(processor.groups, sent)

    return asyncio.run(main())
