"""The catalogue for people who use the data: freshness judged by refresh mode, how to use
each product, filters and help when nothing matches, API docs served by the service itself."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from fastapi.testclient import TestClient

from dataplatform.catalogue.freshness import judge
from dataplatform.catalogue.kafka_state import GroupFacts, TopicFacts
from dataplatform.catalogue.search import Filters, facets, find
from dataplatform.catalogue.usage import example_event
from dataplatform.config import Settings
from dataplatform.web.app import create_app
from dataplatform.products.manifest import ManifestError, parse_manifest
from dataplatform.products.product import load_products

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc)
HOURS_AGO = TopicFacts(exists=True, events=40, last_event_at=NOW - dt.timedelta(hours=3))
JUST_NOW = TopicFacts(exists=True, events=40, last_event_at=NOW - dt.timedelta(seconds=20))


@pytest.fixture(scope="module")
def products():
    return load_products()


def test_a_periodic_product_is_stale_once_its_last_event_is_older_than_the_refresh_period(products):
    housing = products["social_housing_availability"].manifest  # periodic, every 5 minutes
    assert judge(housing, JUST_NOW, None, checked_at=NOW).stale is False
    old = judge(housing, HOURS_AGO, None, checked_at=NOW)
    assert old.stale and "5 minutes" in old.reason
    assert judge(housing, TopicFacts(exists=False), None, checked_at=NOW).stale


def test_an_on_change_product_is_current_while_its_producer_heartbeats_whatever_the_age_of_its_last_event(products):
    warnings = products["housing_shortfall_warnings"].manifest
    inputs = [products["area_supply_demand"].topic]
    running = GroupFacts("dataplatform-processor", members=2, state="STABLE", lag={inputs[0]: 0})
    quiet = judge(warnings, HOURS_AGO, running, checked_at=NOW, input_topics=inputs)
    assert quiet.stale is False and "running" in quiet.reason and quiet.producer["members"] == 2
    stopped = judge(warnings, HOURS_AGO, GroupFacts("dataplatform-processor", 0, "EMPTY"), checked_at=NOW,
                    input_topics=inputs)
    assert stopped.stale and "not running" in stopped.reason
    assert judge(warnings, HOURS_AGO, None, checked_at=NOW, input_topics=inputs).stale  # group gone


def test_an_on_change_producer_stuck_behind_its_inputs_for_longer_than_the_period_is_stale(products):
    warnings = products["housing_shortfall_warnings"].manifest  # refresh period 1 minute
    topic = products["area_supply_demand"].topic
    behind = GroupFacts("dataplatform-processor", 1, "STABLE", lag={topic: 37})
    briefly = judge(warnings, JUST_NOW, behind, checked_at=NOW, input_topics=[topic],
                    lagging_since=NOW - dt.timedelta(seconds=30))
    assert briefly.stale is False
    stuck = judge(warnings, JUST_NOW, behind, checked_at=NOW, input_topics=[topic],
                  lagging_since=NOW - dt.timedelta(minutes=5))
    assert stuck.stale and "37 events behind" in stuck.reason


def test_on_change_without_a_declared_heartbeat_is_never_called_stale(products):
    data = {**products["housing_shortfall_warnings"].manifest.model_dump(mode="json", exclude_none=True)}
    data.pop("producerGroup")
    assert judge(parse_manifest(data), HOURS_AGO, None, checked_at=NOW).stale is False


def test_manifest_refresh_mode_is_checked_and_titles_default_to_the_name(products):
    data = products["social_housing_availability"].manifest.model_dump(mode="json", exclude_none=True)
    with pytest.raises(ManifestError, match="refreshMode"):
        parse_manifest({**data, "refreshMode": "hourly"})
    data.pop("title")
    assert parse_manifest(data).display_title == "Social housing availability"
    assert products["prison_releases_housing_need"].manifest.display_title == "Housing need of people leaving prison"


def test_filters_by_domain_classification_tag_and_owner(products):
    listed = list(products.values())
    assert {h.product.name for h in find(listed, "", Filters(domain="HMPPS"))} == {
        "social_housing_availability", "prison_releases_housing_need"}
    assert {h.product.name for h in find(listed, "", Filters(domain="HMCTS"))} == {
        "court_hearings_interpreter_need", "interpreter_bookings"}
    assert {h.product.name for h in find(listed, "", Filters(classification="Official-Sensitive"))} == {
        "prison_releases_housing_need", "court_hearings_interpreter_need"}
    assert {h.product.name for h in find(listed, "", Filters(tag="warnings"))} == {
        "housing_shortfall_warnings", "interpreter_shortage_warnings"}
    assert {h.product.name for h in find(listed, "", Filters(owner="Jordan Lee"))} == {
        "area_supply_demand", "housing_shortfall_warnings", "interpreter_cover", "interpreter_shortage_warnings"}
    assert find(listed, "bedrooms", Filters(domain="Platforms")) == []
    owners = {o["value"]: o for o in facets(listed)["owner"]}
    assert owners["jordan.lee@justice.gov.uk"] == {"value": "jordan.lee@justice.gov.uk", "label": "Jordan Lee", "count": 4}
    assert [h.product.name for h in find(listed, "shortfall warnings", Filters())][0] == "housing_shortfall_warnings"


def test_the_example_event_is_the_envelope_around_the_entity_with_personal_fields_marked(products):
    event = json.loads(example_event(products["prison_releases_housing_need"]))
    assert set(event) == {"op", "before", "after", "ts_ms", "source", "transaction"}
    assert event["after"]["person_ref"].startswith("<personal")
    assert set(event["after"]) == {f["name"] for f in products["prison_releases_housing_need"].entity_fields()}


@pytest.fixture
def client(tmp_path) -> TestClient:
    with TestClient(create_app(Settings(database_url=f"sqlite:///{tmp_path / 'web.db'}",
                                        dataplatform_home=tmp_path / "home"))) as c:
        yield c


def test_product_page_says_how_to_use_the_data(client: TestClient, tmp_path):
    page = client.get("/catalogue/prison_releases_housing_need").text
    for text in ("How to use this data", "hmpps.prison_releases_housing_need.v1-value",
                 "dataplatform consume hmpps.prison_releases_housing_need.v1",
                 "hmpps__prison_releases_housing_need__v1", f"{tmp_path / 'home' / 'parquet'}/prison_releases_housing_need/",
                 "dataplatform query", "DeserializingConsumer", "AvroDeserializer",
                 "https://intranet.justice.gov.uk/dpia/prison-releases-housing-need", "approved"):
        assert text in page, text
    assert re.search(r'id="report-issue" href="mailto:release-planning-data@justice.gov.uk\?subject=', page)
    assert "Maintainer" not in page  # the manifest names none: no empty row
    assert "Maintainer" in client.get("/catalogue/social_housing_availability").text
    assert "on change (within 1 minute" in client.get("/catalogue/housing_shortfall_warnings").text
    api = client.get("/api/products/prison_releases_housing_need").json()
    assert api["how_to_use"]["sql_table"] == "hmpps__prison_releases_housing_need__v1"
    assert api["title"] == "Housing need of people leaving prison" and api["dpia"]["status"] == "approved"


def test_search_page_shows_titles_filters_and_help_when_nothing_matches(client: TestClient):
    page = client.get("/catalogue", params={"domain": "HMPPS"}).text
    assert page.count('class="govuk-!-margin-bottom-6 result"') == 2
    assert "Social housing availability" in page and "social_housing_availability" in page
    empty = client.get("/catalogue", params={"q": "bedrooms", "tag": "warnings"}).text
    assert 'id="no-results"' in empty and "Remove the filters" in empty and "/catalogue?tag=housing" in empty
    assert [p["name"] for p in client.get("/api/products", params={"owner": "priya.shah@justice.gov.uk"}).json()] == [
        "prison_releases_housing_need"]


def test_api_docs_load_their_scripts_from_the_service_not_a_cdn(client: TestClient):
    docs = client.get("/docs").text
    scripts = re.findall(r'(?:src|href)="([^"]+)"', docs)
    assert scripts and all(s.startswith("/") for s in scripts), scripts
    for asset in scripts:
        assert client.get(asset).status_code == 200, asset
    assert "cdn" not in docs.lower()
