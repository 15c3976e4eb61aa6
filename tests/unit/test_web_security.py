"""The web service under attack and misuse: who may write, cross-site writes, malformed and
oversized requests, security headers, spreadsheet-safe downloads, and a broken manifest.

In-process HTTP (FastAPI's TestClient), except where the connection itself is the point
(keep-alive, chunked bodies): there a real uvicorn server on loopback.
"""

from __future__ import annotations

import http.client
import re
import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from dataplatform.config import Settings
from dataplatform.web.app import create_app
from dataplatform.web.server import RunningServer
from dataplatform.products.product import PRODUCTS_ROOT
from tests.support.example_products import HOUSING_FOLDERS

SCHEMA = '{"type": "record", "name": "T", "fields": [{"name": "a", "type": "string"}]}'
JSON = {"Content-Type": "application/vnd.schemaregistry.v1+json"}


def app_with(tmp_path: Path, **settings) -> TestClient:
    return TestClient(create_app(Settings(database_url=f"sqlite:///{tmp_path / 'web.db'}", **settings)))


@pytest.fixture
def open_client(tmp_path: Path):
    with app_with(tmp_path) as client:
        yield client


def register(client: TestClient, subject: str = "t-value", schema: str = SCHEMA, **headers):
    return client.post(f"/subjects/{subject}/versions", content=json.dumps({"schema": schema}),
                       headers={**JSON, **headers})


# -- 2. writes are never open once any token is set ----------------------------------------

def test_with_only_a_read_token_writes_need_it_too(tmp_path: Path):
    with app_with(tmp_path, api_read_token=SecretStr("reader")) as client:
        anonymous = [register(client), client.put("/config", json={"compatibility": "NONE"}),
                     client.delete("/subjects/t-value")]
        assert [r.status_code for r in anonymous] == [401, 401, 401]
        assert register(client, Authorization="Bearer wrong").status_code == 403
        assert register(client, Authorization="Bearer reader").status_code == 200
        assert client.get("/subjects", headers={"Authorization": "Bearer reader"}).json() == ["t-value"]


def test_the_read_token_does_not_open_writes_when_a_write_token_is_set(tmp_path: Path):
    with app_with(tmp_path, api_read_token=SecretStr("reader"), api_write_token=SecretStr("writer")) as client:
        refused = register(client, Authorization="Bearer reader")
        assert refused.status_code == 403 and "API_WRITE_TOKEN" in refused.json()["message"]
        assert register(client, Authorization="Bearer writer").status_code == 200
        assert client.get("/subjects", headers={"Authorization": "Bearer writer"}).status_code == 200


def test_acknowledging_a_warning_needs_a_token_once_any_is_set(tmp_path: Path):
    from dataplatform.web.auth import COOKIE

    ack = {"by": "duty officer", "note": "seen"}
    with app_with(tmp_path, api_write_token=SecretStr("writer")) as client:   # reads open, acks not
        assert client.get("/api/warnings").status_code == 200
        assert client.post("/api/warnings/E1:shortfall/acknowledgements", json=ack).status_code == 401
        assert client.post("/api/warnings/E1:shortfall/acknowledgements", json=ack,
                           headers={"Authorization": "Bearer nope"}).status_code == 403
        signed_in = client.post("/warnings/E1:shortfall/acknowledge", data=ack, cookies={COOKIE: "writer"},
                                follow_redirects=False)
        assert signed_in.status_code not in (401, 403)           # the sign-in cookie will do (no such warning: 404)
        forged = client.post("/warnings/E1:shortfall/acknowledge", data=ack, cookies={COOKIE: "writer"},
                             headers={"Origin": "https://evil.example"})
        assert forged.status_code == 403                          # but never from another site
    with app_with(tmp_path / "open") as client:
        assert client.post("/api/warnings/E1:shortfall/acknowledgements", json=ack).status_code not in (401, 403)


# -- 3. no cross-site writes ---------------------------------------------------------------

def test_a_write_without_a_json_content_type_is_refused_and_stores_nothing(open_client: TestClient):
    body = json.dumps({"schema": SCHEMA})
    no_type = open_client.post("/subjects/t-value/versions", content=body, headers={"Content-Type": ""})
    assert no_type.status_code == 415 and no_type.json()["error_code"] == 415
    plain = open_client.post("/subjects/t-value/versions", content=body, headers={"Content-Type": "text/plain"})
    assert plain.status_code == 415 and "application/vnd.schemaregistry.v1+json" in plain.json()["message"]
    assert open_client.get("/subjects").json() == []
    for content_type in ("application/json", "application/vnd.schemaregistry+json; charset=utf-8"):
        assert register(open_client, **{"Content-Type": content_type}).status_code == 200


def test_a_write_from_another_origin_is_refused(tmp_path: Path):
    with app_with(tmp_path, api_allowed_origins="https://tools.example.gov.uk") as client:
        foreign = register(client, Origin="https://evil.example")
        assert foreign.status_code == 403 and "Cross-origin" in foreign.json()["message"]
        assert register(client, **{"Sec-Fetch-Site": "cross-site"}).status_code == 403
        assert client.delete("/subjects/t-value", headers={"Origin": "null"}).status_code == 403
        assert client.get("/subjects").json() == []
        assert register(client, Origin="http://testserver").status_code == 200  # the service's own pages
        assert register(client, subject="u-value", Origin="https://tools.example.gov.uk").status_code == 200


# -- 6. every bad request gets a proper answer -----------------------------------------------

@pytest.mark.parametrize("schema_id", [str(2**63), str(10**30), "0", "-5"])
def test_schema_ids_out_of_range_are_not_found(open_client: TestClient, schema_id: str):
    for path in (f"/schemas/ids/{schema_id}", f"/schemas/ids/{schema_id}/versions"):
        response = open_client.get(path)
        assert (response.status_code, response.json()["error_code"]) == (404, 40403)


def test_limits_out_of_range_are_422_in_the_error_shape(open_client: TestClient):
    for limit in (str(10**30), "0", "many"):
        response = open_client.get("/api/warnings/history", params={"limit": limit})
        assert response.status_code == 422
        assert response.json()["error_code"] == 422 and "limit" in response.json()["message"]


def test_unknown_registry_routes_answer_like_confluent(open_client: TestClient):
    missing = open_client.get("/subjects/t-value/versions/1/nonsense")
    assert (missing.status_code, missing.json()) == (404, {"error_code": 404, "message": "HTTP 404 Not Found"})
    wrong_method = open_client.patch("/subjects")
    assert wrong_method.status_code == 405 and wrong_method.json()["error_code"] == 405


def test_an_invalid_default_is_refused(open_client: TestClient):
    bad = '{"type": "record", "name": "T", "fields": [{"name": "a", "type": "int", "default": "abc"}]}'
    refused = register(open_client, schema=bad)
    assert (refused.status_code, refused.json()["error_code"]) == (422, 42201)
    assert "abc" in refused.json()["message"] and "int" in refused.json()["message"]


def test_a_rejected_body_is_never_echoed_whole(open_client: TestClient):
    marker = "X" * 5000
    bad = json.dumps({"type": "record", "name": "T", "fields": [{"name": "a", "type": "int", "default": marker}]})
    refused = register(open_client, schema=bad)
    assert refused.status_code == 422 and marker not in refused.text and len(refused.text) < 1000


@pytest.mark.parametrize("subject", ["a\x00b", "line\nbreak", "bell\x07", "s" * 256])
def test_bad_subject_names_are_refused(open_client: TestClient, subject: str):
    response = register(open_client, subject=subject.replace("\n", "%0A").replace("\x00", "%00").replace("\x07", "%07"))
    assert (response.status_code, response.json()["error_code"]) == (422, 42208)
    assert open_client.get("/subjects").json() == []


def test_bodies_over_the_limit_are_refused_with_413(tmp_path: Path):
    with app_with(tmp_path, api_max_body_bytes=2000) as client:
        padded = json.dumps({"schema": SCHEMA, "padding": "P" * 5000})
        refused = client.post("/subjects/t-value/versions", content=padded, headers=JSON)
        assert refused.status_code == 413 and refused.json()["error_code"] == 413
        assert "P" * 100 not in refused.text
        assert client.get("/subjects").json() == []
        assert register(client).status_code == 200


def test_connections_survive_bad_requests_and_chunked_bodies_are_limited(tmp_path: Path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'web.db'}", api_write_token=SecretStr("writer"),
                        api_max_body_bytes=2000)
    with RunningServer(settings=settings) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        for path, headers, status in [(f"/schemas/ids/{2**63}", {}, 404),
                                      ("/api/warnings/history?limit=" + str(10**30), {}, 422),
                                      ("/subjects", {"Authorization": "Bearer t\u00e9st".encode("utf-8")}, 200),
                                      ("/config/t-value", {"Authorization": b"Bearer \xc3\xa9\xff"}, 200)]:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            body = response.read()
            assert response.status == status, body
            assert json.loads(body) is not None and not response.will_close
        socket_before = conn.sock
        conn.request("PUT", "/config", body=b'{"compatibility": "NONE"}',
                     headers={"Authorization": "Bearer t\u00e9st".encode("utf-8"), **JSON})
        response = conn.getresponse()
        assert response.status == 403 and json.loads(response.read())["error_code"] == 40301
        assert conn.sock is socket_before  # the same keep-alive connection all along
        conn.close()

        chunked = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        chunked.request("POST", "/subjects/t-value/versions", body=iter([b'{"schema": "', b"x" * 3000, b'"}']),
                        headers={**JSON, "Authorization": "Bearer writer"}, encode_chunked=True)
        response = chunked.getresponse()
        assert response.status == 413 and json.loads(response.read())["error_code"] == 413
        chunked.close()


# -- 8. headers and downloads --------------------------------------------------------------

def test_every_response_carries_the_security_headers(open_client: TestClient):
    for path in ("/catalogue", "/warnings", "/api/products", "/subjects", "/no/such/page", "/sign-in"):
        headers = open_client.get(path).headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"], path
        assert "script-src 'self' 'nonce-" in headers["content-security-policy"], path
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "same-origin"
    page = open_client.get("/warnings")
    nonce = page.headers["content-security-policy"].split("'nonce-")[1].split("'")[0]
    scripts = re.findall(r"<script[^>]*>", page.text)
    assert scripts   # the page's own scripts still run: served from this origin, or inline with the nonce
    assert all('src="/static/' in tag or f'nonce="{nonce}"' in tag for tag in scripts), scripts


def copy_products(tmp_path: Path) -> Path:
    """The housing example's four products (a catalogue of its own)."""
    root = tmp_path / "products"
    for folder in HOUSING_FOLDERS:
        shutil.copytree(PRODUCTS_ROOT / folder, root / folder)
    return root


def test_schema_csv_cells_cannot_run_as_formulas(tmp_path: Path):
    from dataplatform.products.product import survey_products

    root = copy_products(tmp_path)
    schema_file = root / "hmpps" / "social_housing_availability" / "entity.avsc"
    schema = json.loads(schema_file.read_text())
    payloads = ['=HYPERLINK("https://evil.example","click")', "+1+2", "-3", "@SUM(A1)", "\tx", "\rx"]
    for field, payload in zip(schema["fields"], payloads):
        field["doc"] = payload
    schema_file.write_text(json.dumps(schema))
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'web.db'}"),
                     products_loader=lambda: survey_products(root))
    with TestClient(app) as client:
        text = client.get("/catalogue/social_housing_availability/schema.csv").text
    import csv
    import io

    docs = [row["doc"] for row in csv.DictReader(io.StringIO(text))]
    assert docs[:len(payloads)] == ["'" + p for p in payloads]


# -- 7. one bad manifest does not take the catalogue down ----------------------------------------

def test_a_broken_manifest_is_shown_as_broken_and_the_others_still_work(tmp_path: Path):
    from dataplatform.products.product import survey_products

    root = copy_products(tmp_path)
    manifest = root / "hmpps" / "social_housing_availability" / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace("securityClassification:", "securityClassificationTypo:"))
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'web.db'}"),
                     products_loader=lambda: survey_products(root))
    with TestClient(app) as client:
        page = client.get("/catalogue")
        assert page.status_code == 200
        assert "hmpps/social_housing_availability" in page.text and "securityClassification" in page.text
        assert 'data-product="prison_releases_housing_need"' in page.text
        assert str(tmp_path) not in page.text  # no server paths on the page
        assert client.get("/catalogue/prison_releases_housing_need").status_code == 200
        assert client.get("/catalogue/area_supply_demand").status_code == 200
        assert {p["name"] for p in client.get("/api/products").json()} == {
            "prison_releases_housing_need", "area_supply_demand", "housing_shortfall_warnings"}
