"""Send change events to Kafka the way a service's producer does, for tests.

Not the producer SDK (``dataplatform.producers.publisher.Publisher``): a test needs to
choose topics, partitions and timestamps, resend events it already sent, and write
tombstones and raw bytes that the SDK would refuse. Events are encoded with the products'
:class:`ProductSerde` and sent by a reliable producer configured like the platform's own
(:func:`reliable_producer_config`), so the same helper reaches a secured broker.
"""

from __future__ import annotations

from confluent_kafka import Producer

from dataplatform.kafka_config import reliable_producer_config
from dataplatform.product_io.serialization import ProductSerde, registry_client
from dataplatform.products.envelope import ChangeEvent
from dataplatform.products.product import DataProduct, get_product


class ChangeSender:
    """Sends change events of ``products`` (data products or their names), each to its own
    topic or to the one ``topics`` names for it; remembers what it sent in ``sent``."""

    def __init__(self, bootstrap: str, registry_url: str, *products: DataProduct | str,
                 topics: dict[str, str] | None = None) -> None:
        client = registry_client(registry_url)
        self.products = {p.name: p for p in (get_product(p) if isinstance(p, str) else p for p in products)}
        self.serdes = {name: ProductSerde(p, client) for name, p in self.products.items()}
        self.topics = {name: (topics or {}).get(name, p.topic) for name, p in self.products.items()}
        self.producer = Producer({**reliable_producer_config(bootstrap), "linger.ms": 20})
        self.sent: list[tuple[str, ChangeEvent]] = []
        self.acked: list[tuple[str, ChangeEvent]] = []   # those the broker acknowledged, as they are
        self.failed: list[str] = []                      # the delivery errors of any it did not
        self.positions: dict[tuple[str, str], int] = {}

    def _product(self, product: str | None) -> str:
        if product is None:
            (product,) = self.products    # only a single-product sender may leave it out
        return product

    def send(self, product: str, event: ChangeEvent, partition: int | None = None,
             timestamp_ms: int | None = None) -> None:
        """Send ``event`` keyed by its entity's key (again, if it was sent before)."""
        serde, topic = self.serdes[product], self.topics[product]
        key = serde.serialize_key(self.products[product].key_of(event.entity), topic)

        def delivered(err, _msg) -> None:  # noqa: ANN001 - confluent_kafka's callback
            (self.failed.append(str(err)) if err else self.acked.append((product, event)))
        self.raw(key, serde.serialize_value(event.to_record(), topic), product, partition, timestamp_ms, delivered)
        self.sent.append((product, event))

    def change(self, op: str, before: dict | None, after: dict | None, product: str | None = None,
               partition: int | None = None, timestamp_ms: int | None = None) -> ChangeEvent:
        """Send a new change of an entity, at the next position of its key."""
        product = self._product(product)
        key = (product, self.products[product].key_of(after if after is not None else before))
        self.positions[key] = self.positions.get(key, 0) + 1
        event = ChangeEvent(op=op, before=before, after=after, source_system="test", position=self.positions[key])
        self.send(product, event, partition, timestamp_ms)
        return event

    def tombstone(self, key: str, product: str | None = None, partition: int | None = None) -> None:
        product = self._product(product)
        self.raw(self.serdes[product].serialize_key(key, self.topics[product]), None, product, partition)

    def raw(self, key: bytes | None, value: bytes | None, product: str | None = None, partition: int | None = None,
            timestamp_ms: int | None = None, on_delivery=None) -> None:  # noqa: ANN001
        """Send bytes as they are (garbage, a tombstone) to a product's topic."""
        kwargs: dict = {} if partition is None else {"partition": partition}
        if on_delivery is not None:
            kwargs["on_delivery"] = on_delivery
        if timestamp_ms is not None:
            kwargs["timestamp"] = timestamp_ms
        self.producer.produce(self.topics[self._product(product)], key=key, value=value, **kwargs)
        self.producer.poll(0)

    def flush(self, timeout: float = 60.0) -> None:
        remaining = self.producer.flush(timeout)
        if remaining:
            raise TimeoutError(f"{remaining} events were not acknowledged within {timeout}s")
