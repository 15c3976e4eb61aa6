"""The product reader's own logic, without a broker: how personal fields are hidden and
where a reader starts (the reading itself is tested on a real broker in
tests/integration/test_product_reader.py)."""

from __future__ import annotations

import pytest
from confluent_kafka import OFFSET_BEGINNING

from dataplatform.product_io.reader import Position, ProductReader
from dataplatform.products.personal_data import REDACTED, redact, redact_event
from dataplatform.products.product import load_products


@pytest.fixture(scope="module")
def products():
    return load_products()


def test_personal_fields_are_shown_as_redacted_and_the_rest_is_kept(products):
    releases = products["prison_releases_housing_need"]
    entity = {"case_id": "c1", "person_ref": "A1234BC", "region_code": "E12000002"}
    assert redact(releases, entity) == {"case_id": "c1", "person_ref": REDACTED, "region_code": "E12000002"}
    assert redact(releases, None) is None


def test_both_sides_of_a_change_event_are_redacted_and_the_envelope_kept(products):
    releases = products["prison_releases_housing_need"]
    event = {"op": "u", "before": {"case_id": "c1", "person_ref": "A1"}, "after": {"case_id": "c1", "person_ref": "A2"},
             "ts_ms": 5, "source": {"event_id": "e1", "position": 2}}
    hidden = redact_event(releases, event)
    assert hidden["before"]["person_ref"] == hidden["after"]["person_ref"] == REDACTED
    assert (hidden["op"], hidden["ts_ms"], hidden["source"]) == ("u", 5, {"event_id": "e1", "position": 2})
    assert event["after"]["person_ref"] == "A2", "the decoded event itself is not changed"
    created = redact_event(releases, {**event, "op": "c", "before": None})
    assert created["before"] is None and created["after"]["person_ref"] == REDACTED
    assert redact_event(releases, None) is None   # a tombstone


def test_a_product_without_personal_fields_reads_unchanged(products):
    warnings = products["housing_shortfall_warnings"]
    event = {"op": "c", "before": None, "after": {"area_code": "E08000003"}}
    assert redact_event(warnings, event) is event


def test_beginning_and_end_read_as_a_fresh_group_of_their_own():
    begin, end = Position.beginning(), Position.end()
    assert (begin.reset, end.reset) == ("earliest", "latest")
    assert not begin.assigns and not end.assigns
    first, second = begin.group_id("dataplatform-tail"), begin.group_id("dataplatform-tail")
    assert first.startswith("dataplatform-tail-") and first != second


def test_committed_offsets_read_as_the_group_and_fall_back_to_the_chosen_start():
    position = Position.committed("analysts", otherwise="latest")
    assert position.group_id("dataplatform-consume") == "analysts"
    assert position.reset == "latest" and not position.assigns
    assert Position.committed("analysts").reset == "earliest"


def test_given_offsets_assign_every_partition_and_start_the_others_at_their_beginning():
    position = Position.at({("t", 1): 42})
    assert position.assigns and position.group_id("dataplatform-web") == "dataplatform-web"
    assigned = position.assignment({"t": [2, 0, 1], "missing": []})
    assert [(tp.topic, tp.partition, tp.offset) for tp in assigned] == [
        ("t", 0, OFFSET_BEGINNING), ("t", 1, 42), ("t", 2, OFFSET_BEGINNING), ("missing", 0, OFFSET_BEGINNING)]


def test_given_offsets_alone_assign_only_the_partitions_named():
    position = Position.at({("t", 3): 9, ("u", 0): 1}, every_partition=False)
    assert [(tp.topic, tp.partition, tp.offset) for tp in position.assignment({"t": [0, 1, 2, 3]})] == [
        ("t", 3, 9), ("u", 0, 1)]


def test_decoding_a_product_topic_needs_a_registry(products):
    with pytest.raises(ValueError, match="schema registry"):
        ProductReader({"t": products["housing_shortfall_warnings"]}, Position.beginning(), bootstrap="localhost:1")
