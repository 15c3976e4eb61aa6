"""What a sink reads: the topics' data products, and each record as the sink maps it.

Kept apart from the consume loop so that a sink's mapping (``prepare``) and its tests deal
only in :class:`SinkRecord` and :class:`Batch`, never in Kafka messages or wire bytes. The
reading and decoding itself is the product reader's
(:class:`~dataplatform.product_io.reader.ProductReader`), as for every reader of products.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dataplatform.product_io.reader import ProductRecord, TopicPartitionKey
from dataplatform.products.product import DataProduct, load_products


class UnknownTopicError(LookupError):
    """A topic that no data product publishes."""


@dataclass(slots=True)   # one per message a sink reads: built and read fast
class SinkRecord:
    """One decoded Kafka message of a data product topic."""

    topic: str
    partition: int
    offset: int
    key: str | None
    value: dict | None  # None for a tombstone
    schema_id: int | None
    timestamp_ms: int | None
    product: DataProduct

    @classmethod
    def of(cls, record: ProductRecord, product: DataProduct) -> "SinkRecord":
        """The sink's view of a record the product reader decoded."""
        return cls(record.topic, record.partition, record.offset, record.key, record.value, record.schema_id,
                   record.timestamp_ms, product)


@dataclass
class Batch:
    """What one checkpoint makes durable: prepared rows, and per partition the next offset."""

    items: list[Any] = field(default_factory=list)
    next_offsets: dict[TopicPartitionKey, int] = field(default_factory=dict)
    rows: dict[TopicPartitionKey, int] = field(default_factory=dict)
    errors: dict[TopicPartitionKey, str] = field(default_factory=dict)


def resolve_products(topics: Iterable[str] = (), products: Iterable[DataProduct] = (),
                     products_root: Any = None, topic_products: Mapping[str, DataProduct] | None = None,
                     ) -> dict[str, DataProduct]:
    """Each requested topic's data product, by topic; explicit products win over the catalogue.
    ``topic_products`` maps topics whose names differ from the product's (a prefixed copy)."""
    by_topic = {**{p.topic: p for p in products}, **(topic_products or {})}
    wanted = [t for t in topics if t not in by_topic]
    if wanted:
        known = {p.topic: p for p in (load_products(products_root) if products_root else load_products()).values()}
        for t in wanted:
            if t not in known:
                raise UnknownTopicError(
                    f"no data product publishes topic {t!r}; known topics: {', '.join(sorted(known)) or 'none'}")
            by_topic[t] = known[t]
    if not by_topic:
        raise UnknownTopicError("no topic to sink: pass at least one --topic")
    return by_topic

