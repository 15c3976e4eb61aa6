"""Bridge specs: the example is accepted, every mistake is named with file, place and fix;
messages are unwrapped (SNS envelope or raw) and mapped the same way on every redelivery."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from dataplatform.bridges.loading import load_bridges
from dataplatform.bridges.mapping import MappingError, coerce, position_of
from dataplatform.bridges.parse import parse
from dataplatform.config import Settings
from dataplatform.producers.bridges.messages import NOT_AN_EVENT, NOT_JSON, Incoming, Poison, read_event
from dataplatform.products.product import load_products
from dataplatform.web.app import create_app

PRODUCT = "prison_releases_housing_need"
PRODUCTS = load_products()
FILE = PRODUCTS[PRODUCT].folder / "bridge.yaml"
DOC = yaml.safe_load(FILE.read_text())


def problems_of(change) -> list[str]:  # noqa: ANN001
    doc = copy.deepcopy(DOC)
    change(doc)
    bridge, problems = parse(doc, FILE, PRODUCTS)
    assert bridge is None and problems
    return [str(p) for p in problems]


def test_the_example_spec_is_accepted():
    bridge = load_bridges()[PRODUCT]
    assert bridge.queue == "dataplatform-prison-releases" and bridge.ignore_unknown
    assert bridge.mapping("prison-offender-events.prisoner.released").op == "u"
    assert all(m.reads_detail for m in bridge.events)


@pytest.mark.parametrize("change,where,says", [
    (lambda d: d["source"].pop("queue"), "source", "'queue' is a required property"),
    (lambda d: d["events"][0].update(op="upsert"), "events[0].op", "'upsert' is not one of"),
    (lambda d: d.update(product="no_such"), "product", "no data product named 'no_such'"),
    (lambda d: d["events"][0]["fields"].update(colour="event.x"), "events[0].fields.colour", "has no field 'colour'"),
    (lambda d: d["events"][0]["fields"].pop("region_code"), "events[0].fields", "region_code that no expression sets"),
    (lambda d: d["events"][0]["fields"].update(case_id="event.additionalInformation.caseNo"),
     "events[0].fields.case_id", "reads 'caseNo', which is not there"),
    (lambda d: d["events"][0]["fields"].update(case_id="evnt.id"), "events[0].fields.case_id", "unknown name evnt"),
    (lambda d: d["events"][0]["fields"].update(status='"gone"'), "events[0].example", "expected one of"),
    (lambda d: d["events"][0]["example"].pop("detail"), "events[0].example", "read detail but the example has none"),
    (lambda d: d["events"][0].update(position="event.description"), "events[0].position", "not an ISO-8601"),
    (lambda d: d["events"].append(copy.deepcopy(d["events"][0])), "events", "mapped more than once"),
])
def test_every_mistake_is_named_with_file_place_and_fix(change, where, says):
    problems = problems_of(change)
    assert any(f"bridge.yaml: {where}" in p and says in p for p in problems), problems


def test_a_spec_outside_its_products_folder_is_refused(tmp_path):
    bridge, problems = parse(DOC, tmp_path / "bridge.yaml", PRODUCTS)
    assert bridge is None and "keep bridge.yaml in the folder of the product it feeds" in str(problems[0])


EVENT = {"eventType": "x.y", "version": 1, "occurredAt": "2026-12-05T10:15:30+00:00"}


def test_an_sns_envelope_and_a_raw_message_give_the_same_event_their_ids():
    envelope = json.dumps({"Type": "Notification", "MessageId": "sns-1", "Message": json.dumps(EVENT)})
    wrapped = read_event(Incoming("sqs-1", "r", envelope))
    raw = read_event(Incoming("sqs-2", "r", json.dumps(EVENT)))
    assert wrapped.event == raw.event == EVENT
    assert (wrapped.event_id, raw.event_id) == ("sns-1", "sqs-2")


@pytest.mark.parametrize("body,reason", [("nope", NOT_JSON), ("[1]", NOT_AN_EVENT), ('{"a": 1}', NOT_AN_EVENT),
                                         ('{"Type": "Notification", "Message": "{bad"}', NOT_JSON)])
def test_bad_bodies_are_poison_with_a_reason(body, reason):
    with pytest.raises(Poison) as caught:
        read_event(Incoming("q", "r", body))
    assert caught.value.reason == reason


def test_positions_follow_time_and_break_ties_the_same_way_every_time():
    early, late = position_of("2026-12-05T10:00:00Z", "b"), position_of("2026-12-05T10:00:00.000001Z", "a")
    assert early < late
    assert position_of("2026-12-05T10:00:00Z", "m") == position_of("2026-12-05T10:00:00+00:00", "m")
    assert position_of("2026-12-05T10:00:00", "m") == position_of("2026-12-05T10:00:00Z", "m")  # London is on GMT
    with pytest.raises(MappingError):
        position_of("yesterday", "m")


def test_json_dates_become_avro_dates_and_timestamps():
    assert coerce("2026-12-19", {"type": "int", "logicalType": "date"}) == dt.date(2026, 12, 19)
    assert coerce("2026-06-01T12:00:00", {"type": "long", "logicalType": "timestamp-millis"}) == \
        dt.datetime(2026, 6, 1, 11, 0, tzinfo=dt.UTC)   # London summer time


def test_the_catalogue_shows_where_a_bridged_products_events_come_from(tmp_path: Path):
    with TestClient(create_app(Settings(database_url=f"sqlite:///{tmp_path / 'web.db'}",
                                        dataplatform_home=tmp_path / "home"))) as client:
        page = client.get(f"/catalogue/{PRODUCT}").text
        other = client.get("/catalogue/social_housing_availability").text
        api = client.get(f"/api/products/{PRODUCT}").json()
    assert "Where its events come from" in page and "dataplatform-prison-releases" in page
    assert "prison-offender-events.prisoner.released" in page
    assert "Where its events come from" not in other
    assert api["bridge"]["queue"] == "dataplatform-prison-releases"
