"""Housing units and release cases as change events, for tests, the benchmark and demos.

:class:`ChangePublisher` writes Confluent-wire-format change events with
:class:`ProductSerde` and a reliable confluent-kafka producer to any topic (tests give each
run its own), keyed by the entity key so an entity always lands on the same partition.
"""

from __future__ import annotations

import datetime as dt
import time

from confluent_kafka import Producer

from dataplatform.kafka_config import reliable_producer_config
from dataplatform.product_io.serialization import ProductSerde, registry_client
from dataplatform.products.envelope import ChangeEvent
from dataplatform.products.product import DataProduct, get_product
from dataplatform.stream_processors.supply_demand import HOUSING, RELEASES


def housing_unit(unit_id: str, la: str, region: str, status: str = "available",
                 available_from: dt.date | None = None, ts_ms: int | None = None) -> dict:
    return {"unit_id": unit_id, "local_authority_code": la, "region_code": region, "provider": "Council",
            "bedrooms": 1, "accessible": False, "status": status,
            "available_from": available_from or dt.date.today(), "weekly_rent": None,
            "updated_at": ts_ms or int(time.time() * 1000)}


def release_case(case_id: str, la: str, region: str, status: str = "scheduled",
                 release_date: dt.date | None = None, person_ref: str | None = None,
                 ts_ms: int | None = None) -> dict:
    return {"case_id": case_id, "person_ref": person_ref or f"PERSON-{case_id}", "prison_code": "MRI",
            "expected_release_date": release_date or dt.date.today() + dt.timedelta(days=7),
            "local_authority_code": la, "region_code": region, "housing_need": "general", "status": status,
            "updated_at": ts_ms or int(time.time() * 1000)}


class ChangePublisher:
    """Publish change events of the housing and releases products to chosen topics."""

    def __init__(self, bootstrap: str, registry_url: str, topics: dict[str, str]) -> None:
        client = registry_client(registry_url)
        self.products: dict[str, DataProduct] = {n: get_product(n) for n in (HOUSING, RELEASES)}
        self.serdes = {n: ProductSerde(p, client) for n, p in self.products.items()}
        self.topics = topics
        self.producer = Producer({**reliable_producer_config(bootstrap), "linger.ms": 20})
        self.sent: list[tuple[str, ChangeEvent]] = []

    def publish(self, product: str, event: ChangeEvent) -> None:
        topic = self.topics[product]
        key = self.products[product].key_of(event.entity)
        value = self.serdes[product].serialize_value(event.to_record(), topic)
        self.producer.produce(topic, key=key.encode(), value=value)
        self.producer.poll(0)
        self.sent.append((product, event))

    def publish_raw(self, product: str, key: bytes, value: bytes) -> None:
        self.producer.produce(self.topics[product], key=key, value=value)

    def flush(self, timeout: float = 60.0) -> None:
        remaining = self.producer.flush(timeout)
        if remaining:
            raise TimeoutError(f"{remaining} events were not acknowledged within {timeout}s")
