"""Publish warning transitions the way the stream processor does, for tests of the pages,
the follower and webhooks."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Producer

from dataplatform.product_io.serialization import ProductSerde, registry_client
from dataplatform.products.envelope import ChangeEvent
from dataplatform.products.product import get_product
from dataplatform.stream_processors.rules import Rule, message_of
from dataplatform.stream_processors.supply_demand import Figures


def warning(area_code: str = "E08000003", area_name: str = "Manchester", severity: str = "RED",
            transition: str = "raised", demand: int = 41, supply: int = 12, rule_id: str = "shortfall",
            raised_at_ms: int | None = None, evidence_at_ms: int | None = None) -> dict:
    now = int(time.time() * 1000)
    return {
        "warning_id": f"{area_code}:{rule_id}", "area_code": area_code, "area_name": area_name,
        "area_level": "local_authority", "rule_id": rule_id, "severity": severity, "transition": transition,
        "supply": supply, "demand": demand, "horizon_days": 28,
        "evidence_at": evidence_at_ms if evidence_at_ms is not None else now,
        "raised_at": None if severity == "NONE" else (raised_at_ms if raised_at_ms is not None else now),
        "message": message_of(severity, transition, area_name, Figures(supply, demand), Rule(id=rule_id, min_demand=5)),
    }


def figures(area_code: str = "E08000003", supply: int = 12, demand: int = 41, as_of_ms: int | None = None) -> dict:
    """One area's figures as the processor publishes them on ``area_supply_demand``."""
    from dataplatform.products.reference import area_name, local_authorities

    la = local_authorities().get(area_code)
    return {"area_code": area_code, "area_name": area_name(area_code),
            "area_level": "local_authority" if la else "region", "region_code": la.region_code if la else area_code,
            "supply": supply, "demand": demand, "horizon_days": 28,
            "as_of": as_of_ms if as_of_ms is not None else int(time.time() * 1000)}


class WarningPublisher:
    """Publishes change events of a product (the warnings by default) keyed by ``key_field``;
    each key's previous record becomes the next event's ``before``."""

    def __init__(self, bootstrap: str, registry_url: str, topic: str, product: str = "housing_shortfall_warnings",
                 key_field: str = "warning_id") -> None:
        self.topic, self.key_field = topic, key_field
        self.serde = ProductSerde(get_product(product), registry_client(registry_url))
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
        self.position = 0
        self.previous: dict[str, dict] = {}

    def send(self, w: dict, event_id: str | None = None) -> str:
        self.position += 1
        before = self.previous.get(w[self.key_field]) if self.key_field != "warning_id" else (
            dict(w) if self.position > 1 else None)
        event = ChangeEvent("u" if before else "c", before, w,
                            source_system="test", position=self.position, event_id=event_id or str(uuid.uuid4()))
        self.producer.produce(self.topic, key=w[self.key_field].encode(),
                              value=self.serde.serialize_value(event.to_record(), self.topic))
        assert self.producer.flush(30) == 0
        self.previous[w[self.key_field]] = dict(w)
        return event.event_id


class FiguresPublisher(WarningPublisher):
    def __init__(self, bootstrap: str, registry_url: str, topic: str) -> None:
        super().__init__(bootstrap, registry_url, topic, product="area_supply_demand", key_field="area_code")
