"""Catalogue search, lineage and the web API's access control (in-process HTTP)."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from dataplatform.catalogue.lineage import edges, layers, lineage_svg
from dataplatform.catalogue.search import search
from dataplatform.config import Settings
from dataplatform.web.app import create_app
from dataplatform.products.product import load_products


def test_search_finds_products_by_field_name_tag_and_description():
    products = list(load_products().values())
    assert [h.product.name for h in search(products, "bedrooms")] == ["social_housing_availability"]
    hits = search(products, "expected_release_date")
    assert hits[0].product.name == "prison_releases_housing_need" and "fields" in hits[0].matched_in
    assert {h.product.name for h in search(products, "warnings")} >= {"housing_shortfall_warnings"}
    assert search(products, "no-such-thing-anywhere") == []


def test_lineage_follows_upstream_products():
    products = load_products()
    assert ("prison_releases_housing_need", "area_supply_demand") in edges(products)
    assert ("area_supply_demand", "housing_shortfall_warnings") in edges(products)
    depth = layers(products)
    assert depth["social_housing_availability"] == 0 and depth["housing_shortfall_warnings"] == 2
    assert ("interpreter_bookings", "interpreter_cover") in edges(products)
    assert depth["court_hearings_interpreter_need"] == 0 and depth["interpreter_shortage_warnings"] == 2
    svg = lineage_svg(products, highlight="area_supply_demand")
    assert svg.count("<line") == 6 and 'href="/catalogue/area_supply_demand"' in svg


@pytest.fixture
def client(tmp_path) -> TestClient:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'web.db'}", api_write_token=SecretStr("s3cret"))
    with TestClient(create_app(settings)) as c:
        yield c


SCHEMA = '{"type": "record", "name": "T", "fields": [{"name": "a", "type": "string"}]}'


def test_writes_need_the_token(client: TestClient):
    missing = client.post("/subjects/t-value/versions", json={"schema": SCHEMA})
    assert missing.status_code == 401 and "Authorization: Bearer" in missing.json()["message"]
    wrong = client.post("/subjects/t-value/versions", json={"schema": SCHEMA}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403 and "API_WRITE_TOKEN" in wrong.json()["message"]
    ok = client.post("/subjects/t-value/versions", json={"schema": SCHEMA}, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200 and ok.json()["id"] >= 1
    basic = base64.b64encode(b"svc:s3cret").decode()
    assert client.put("/config", json={"compatibility": "FULL"}, headers={"Authorization": f"Basic {basic}"}).status_code == 200
    # reads stay open unless API_READ_TOKEN is set; a compatibility test is a read
    assert client.get("/subjects").json() == ["t-value"]
    assert client.post("/compatibility/subjects/t-value/versions/latest", json={"schema": SCHEMA}).status_code == 200


def test_reads_can_be_protected(tmp_path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'r.db'}", api_read_token=SecretStr("reader"))
    with TestClient(create_app(settings)) as c:
        assert c.get("/api/products").status_code == 401
        assert c.get("/api/products", headers={"Authorization": "Bearer wrong"}).status_code == 403
        assert len(c.get("/api/products", headers={"Authorization": "Bearer reader"}).json()) == len(load_products())


def test_catalogue_pages_and_api(client: TestClient):
    page = client.get("/catalogue/prison_releases_housing_need")
    assert page.status_code == 200
    for text in ("Official-Sensitive", "release-planning-data@justice.gov.uk", "every 15 minutes",
                 "expected_release_date", "personal", "Download the schema as CSV"):
        assert text in page.text
    csv_text = client.get("/catalogue/prison_releases_housing_need/schema.csv").text
    assert csv_text.splitlines()[0] == "name,type,nullable,personal,doc"
    assert "person_ref,string,False,True" in csv_text
    found = client.get("/api/products", params={"q": "bedrooms"}).json()
    assert [p["name"] for p in found] == ["social_housing_availability"]
    assert client.get("/api/products/nope").status_code == 404
    spec = client.get("/openapi.json").json()
    assert {"/api/products", "/api/warnings", "/subjects/{subject}/versions"} <= set(spec["paths"])
