"""The producer SDK against the real broker and the platform's registry over HTTP."""

from __future__ import annotations

import copy
import datetime as dt
import decimal
import json

import httpx
import pytest

from dataplatform.config import Settings
from dataplatform.product_io.serialization import ProductSerde, registry_client
from dataplatform.product_io.names import value_subject
from dataplatform.producers.publisher import DeliveryError, Publisher, SchemaIncompatibleError
from dataplatform.products.envelope import ChangeEvent
from dataplatform.products.product import get_product
from dataplatform.products.validation import RecordValidationError
from tests.support.entities import housing_unit
from tests.support.kafka import consume, end_offset, create_topic, unique_name

HOUSING = get_product("social_housing_availability")


def unit(unit_id: str = "HU-1", status: str = "available", **changes: object) -> dict:
    return housing_unit(unit_id, status=status, **{
        "provider": "Manchester City Council", "bedrooms": 2, "available_from": dt.date(2026, 12, 1),
        "weekly_rent": decimal.Decimal("95.50"), "updated_at": dt.datetime(2026, 11, 27, 9, 30, tzinfo=dt.UTC),
        **changes})


def publisher(bootstrap: str, registry_url: str, topic: str) -> Publisher:
    return Publisher(HOUSING, bootstrap=bootstrap, registry_url=registry_url, source_system="housing-service",
                     settings=Settings(), topic=topic)


def test_every_op_is_read_back_decoded_and_equal(bootstrap: str, registry_url: str, topic: str) -> None:
    available, reserved = unit(), unit(status="reserved")
    with publisher(bootstrap, registry_url, topic) as pub:
        results = [pub.created(available, trace_id="trace-1"), pub.updated(available, reserved),
                   pub.snapshot(reserved), pub.deleted(reserved)]
    assert [r.offset for r in results] == [0, 1, 2, 3]
    assert all(r.topic == topic and r.key == "HU-1" for r in results)

    messages = consume(bootstrap, topic, expected=5)
    serde = ProductSerde(HOUSING, registry_client(registry_url))
    decoded = [serde.deserialize_value(m.value(), topic) for m in messages]
    assert [d["op"] if d else None for d in decoded] == ["c", "u", "r", "d", None]  # tombstone last
    assert [m.key() for m in messages] == [b"HU-1"] * 5
    assert decoded[0]["after"] == available and decoded[0]["before"] is None
    assert decoded[1]["before"] == available and decoded[1]["after"] == reserved
    assert decoded[2]["after"] == reserved
    assert decoded[3]["before"] == reserved and decoded[3]["after"] is None
    assert messages[4].value() is None
    positions = [d["source"]["position"] for d in decoded[:4]]
    assert positions == sorted(positions) and len(set(positions)) == 4
    for message, result in zip(messages, results + [results[3]]):
        headers = {k: v.decode() for k, v in message.headers()}
        assert headers["event_id"] == result.event_id
        assert headers["product"] == HOUSING.name
        assert headers["product_version"] == str(HOUSING.manifest.version)
        assert headers["content-type"] == "application/vnd.confluent.avro"
    assert dict(messages[0].headers())["trace_id"] == b"trace-1"
    assert "trace_id" not in dict(messages[1].headers())
    assert [d["source"]["event_id"] for d in decoded[:4]] == [r.event_id for r in results]


def test_a_bad_record_names_the_field_and_sends_nothing(bootstrap: str, registry_url: str, topic: str) -> None:
    with publisher(bootstrap, registry_url, topic) as pub:
        with pytest.raises(RecordValidationError) as raised:
            pub.created(unit(bedrooms="three"))
        with pytest.raises(RecordValidationError) as raised_update:
            pub.updated(unit(), unit(status="demolished"))
    assert raised.value.field_path == "bedrooms"
    assert "three" in str(raised.value) and "int" in str(raised.value)
    assert raised_update.value.field_path == "status"
    assert end_offset(bootstrap, topic) == 0


def test_async_path_returns_handles_and_flush_waits_for_all(bootstrap: str, registry_url: str, topic: str) -> None:
    with publisher(bootstrap, registry_url, topic) as pub:
        handles = [pub.publish(ChangeEvent("c", None, unit(f"HU-{i}"), "housing-service", position=i), wait=False)
                   for i in range(50)]
        pub.flush(30)
        assert all(h.done() and h.succeeded() for h in handles)
        assert sorted(h.result().offset for h in handles) == list(range(50))
    assert end_offset(bootstrap, topic) == 50


def test_flush_lists_events_that_were_not_delivered(bootstrap: str, registry_url: str) -> None:
    missing = unique_name("no-such-topic")  # the broker does not auto-create topics for us here
    pub = Publisher(HOUSING, bootstrap=bootstrap, registry_url=registry_url, source_system="housing-service",
                    settings=Settings(), topic=missing,
                    producer_config={"delivery.timeout.ms": 3000, "request.timeout.ms": 2000, "linger.ms": 0,
                                     "allow.auto.create.topics": False, "topic.metadata.refresh.interval.ms": 500})
    with pytest.raises(DeliveryError) as raised:
        with pub:
            handle = pub.publish(ChangeEvent("c", None, unit(), "housing-service", position=1), wait=False)
    assert [f.event_id for f in raised.value.failures] == [handle.event_id]
    assert handle.done() and not handle.succeeded()


def test_an_incompatible_schema_is_refused_clearly(bootstrap: str, registry_url: str, topic: str) -> None:
    subject = value_subject(topic)
    incompatible = copy.deepcopy(HOUSING.value_schema)
    incompatible["fields"] = [f for f in incompatible["fields"] if f["name"] != "ts_ms"] + [
        {"name": "mandatory_new", "type": "string"}]
    response = httpx.post(f"{registry_url}/subjects/{subject}/versions",
                          json={"schema": json.dumps(incompatible)}, timeout=10)
    assert response.status_code == 200, response.text
    with pytest.raises(SchemaIncompatibleError) as raised:
        publisher(bootstrap, registry_url, topic).open()
    assert subject in str(raised.value) and "incompatible" in str(raised.value)


def test_one_entity_stays_on_one_partition_in_order(bootstrap: str, registry_url: str) -> None:
    topic = create_topic(bootstrap, unique_name("housing-3p"), partitions=3)
    with publisher(bootstrap, registry_url, topic) as pub:
        first = pub.created(unit("HU-A"))
        second = pub.updated(unit("HU-A"), unit("HU-A", status="let"))
    assert first.partition == second.partition and second.offset == first.offset + 1
