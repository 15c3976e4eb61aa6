"""Publish warning transitions the way the stream processor does, for tests of the pages,
the follower and webhooks."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Producer

from dataplatform.serialization import ProductSerde, registry_client
from schemas.envelope import ChangeEvent
from schemas.product import get_product


def warning(area_code: str = "E08000003", area_name: str = "Manchester", severity: str = "RED",
            transition: str = "raised", demand: int = 41, supply: int = 12, rule_id: str = "shortfall") -> dict:
    now = int(time.time() * 1000)
    return {
        "warning_id": f"{area_code}:{rule_id}", "area_code": area_code, "area_name": area_name,
        "area_level": "local_authority", "rule_id": rule_id, "severity": severity, "transition": transition,
        "supply": supply, "demand": demand, "horizon_days": 28, "evidence_at": now,
        "raised_at": None if severity == "NONE" else now,
        "message": f"{severity} {transition}  {area_name}  demand {demand} > supply {supply} (next 28 days)",
    }


class WarningPublisher:
    def __init__(self, bootstrap: str, registry_url: str, topic: str) -> None:
        self.topic = topic
        self.serde = ProductSerde(get_product("housing_shortfall_warnings"), registry_client(registry_url))
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
        self.position = 0

    def send(self, w: dict, event_id: str | None = None) -> str:
        self.position += 1
        event = ChangeEvent("u" if self.position > 1 else "c", dict(w) if self.position > 1 else None, w,
                            source_system="test", position=self.position, event_id=event_id or str(uuid.uuid4()))
        self.producer.produce(self.topic, key=w["warning_id"].encode(),
                              value=self.serde.serialize_value(event.to_record(), self.topic))
        assert self.producer.flush(30) == 0
        return event.event_id
