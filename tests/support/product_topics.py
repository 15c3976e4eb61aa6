"""The tests' reader of product topics: the platform's own :class:`ProductReader`, from the
beginning unless told otherwise, so a test reads outputs exactly as a subscriber does
(decoded, personal fields redacted, through the client config that reaches a secured broker)."""

from __future__ import annotations

from collections.abc import Mapping

from dataplatform.config import Settings
from dataplatform.product_io.reader import Position, ProductReader, ProductRecord
from dataplatform.product_io.serialization import registry_client
from dataplatform.products.product import DataProduct
from tests.support.kafka import unique_name
from tests.support.waiting import wait_until


class TopicReader(ProductReader):
    """Reads ``{topic: product}`` (``None``: read undecoded, e.g. a dead-letter topic);
    topics may be created after the reader starts."""

    def __init__(self, bootstrap: str, registry_url: str, topics: Mapping[str, DataProduct | None],
                 position: Position = Position.beginning(), settings: Settings | None = None, **kw: object) -> None:
        super().__init__(topics, position, registry=registry_client(registry_url), name=unique_name("test-reader"),
                         bootstrap=bootstrap, settings=settings, wait_for_topics=True, **kw)

    def drain(self) -> list[ProductRecord]:
        """What has arrived since the last call (waits up to half a second for it)."""
        return self.poll(0.5)

    def read_to_end(self, timeout: float = 60.0) -> list[ProductRecord]:
        """Every record up to the end of every partition as it is now, or fail at the deadline."""
        records: list[ProductRecord] = []

        def at_end() -> bool:
            records.extend(self.drain())
            return self.at_end()
        wait_until(at_end, timeout=timeout, message=f"{', '.join(self.topics)} read to the end")
        return records
