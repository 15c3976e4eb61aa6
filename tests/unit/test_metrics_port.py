"""A component's own ``--metrics-port`` answers every request as the web service's
``/metrics`` does, for every way the tokens can be configured: open while no read token is
set, then 401 without credentials, 403 with wrong ones, 200 with the read or write token
(Bearer, or Basic with the token as password). End to end (a sink, the outbox relay):
tests/integration/test_metrics_ports.py."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from dataplatform.config import Settings
from dataplatform.web.app import create_app
from dataplatform.web.metrics_port import access_note, serve_metrics

READ, WRITE = "reader-token", "writer-token"
TOKENS = {"none": {}, "read only": {"api_read_token": SecretStr(READ)},
          "write only": {"api_write_token": SecretStr(WRITE)},
          "both": {"api_read_token": SecretStr(READ), "api_write_token": SecretStr(WRITE)}}
CREDENTIALS = {"none": {}, "read bearer": {"Authorization": f"Bearer {READ}"},
               "write bearer": {"Authorization": f"Bearer {WRITE}"},
               "read basic": {"Authorization": "Basic " + base64.b64encode(f"prometheus:{READ}".encode()).decode()},
               "wrong bearer": {"Authorization": "Bearer not-a-token"},
               "wrong scheme": {"Authorization": f"Token {READ}"}}


@pytest.fixture(params=list(TOKENS))
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'web.db'}", **TOKENS[request.param])


@pytest.fixture
def port(settings: Settings) -> Iterator[int]:
    server = serve_metrics(0, settings, host="127.0.0.1")
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()


def test_the_port_answers_every_credential_as_the_web_services_metrics_do(settings: Settings, port: int):
    with TestClient(create_app(settings)) as web:
        for name, headers in CREDENTIALS.items():
            expected = web.get("/metrics", headers=headers)
            got = httpx.get(f"http://127.0.0.1:{port}/metrics", headers=headers, timeout=10)
            assert got.status_code == expected.status_code, name
            if got.status_code == 200:
                assert "# TYPE python_info gauge" in got.text, name
            else:
                assert got.json() == expected.json(), name
                assert got.headers.get("www-authenticate") == expected.headers.get("www-authenticate"), name
                assert READ not in got.text and WRITE not in got.text


def test_with_a_read_token_every_path_needs_it(tmp_path: Path):
    """prometheus-client serves its metrics on any path: none is left open."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'web.db'}", api_read_token=SecretStr(READ))
    server = serve_metrics(0, settings, host="127.0.0.1")
    try:
        for path in ("/metrics", "/", "/sign-in", "/static/x", "/favicon.ico"):
            answer = httpx.get(f"http://127.0.0.1:{server.server_port}{path}", timeout=10)
            assert answer.status_code == 401 and answer.json()["error_code"] == 40101, path
    finally:
        server.shutdown()
        server.server_close()
    assert access_note(settings) == "API_READ_TOKEN or API_WRITE_TOKEN needed"
    assert access_note(Settings(api_write_token=SecretStr(WRITE))) == "open: no API_READ_TOKEN"
