"""The processor's real groups table in a unit test: no broker, the producer's sends recorded."""

from __future__ import annotations

import asyncio

from dataplatform.stream_processors.config import ProcessorConfig


class _Message:
    def __init__(self, partition: int) -> None:
        self.partition = partition


class Event:
    """What a table write needs of the event its values come from: its partition."""

    def __init__(self, partition: int) -> None:
        self.message = _Message(partition)


def run_with_table(tmp_path, scenario, store: str = "memory://"):
    """``scenario(table, sent)`` on the processor app's real groups table, its producer's
    ``send_records`` recording what it is given in ``sent``."""
    from dataplatform.stream_processors.topology import DerivationProcessor

    config = ProcessorConfig(app_id="tables-test", bootstrap="127.0.0.1:1", registry_url="http://127.0.0.1:1",
                             datadir=str(tmp_path), store=store)

    async def main():
        processor = DerivationProcessor(config)   # no broker or registry is contacted
        sent: list[tuple[str, int, list]] = []

        async def record(topic, partition, records, on_delivered=None):
            sent.append((topic, partition, list(records)))

        processor.app.producer.send_records = record
        return await scenario(processor.groups, sent)

    return asyncio.run(main())
