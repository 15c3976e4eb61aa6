"""A publish that timed out says why and that it may have been written after all."""

from __future__ import annotations

from confluent_kafka import KafkaError

from dataplatform.producers.delivery import DeliveryHandle, explain


class _Publisher:
    topic = "hmpps.social_housing_availability.v1"

    def __init__(self) -> None:
        self._failures: list = []


def test_a_delivery_timeout_names_its_likely_causes_and_the_retry():
    publisher = _Publisher()
    handle = DeliveryHandle(publisher, "event-1", "HU-1")
    handle._on_delivery(KafkaError(KafkaError._MSG_TIMED_OUT), None)
    message = str(handle.exception())
    assert "min.insync.replicas" in message and "Message timed out" in message
    assert "event event-1 (key 'HU-1')" in message and "same event ids" in message
    assert publisher._failures[0].event_id == "event-1"


def test_other_errors_are_passed_on_as_they_are():
    err = KafkaError(KafkaError.MSG_SIZE_TOO_LARGE)
    assert explain(err) == str(err)
