"""A sink's and an outbox relay's own ``--metrics-port``, run as operators run them: once
``API_READ_TOKEN`` is set, ``/metrics`` answers 401 without credentials, 403 with a wrong
token and 200 with the token Prometheus sends; without it, open as before. Neither prints
the token. (Every combination of tokens and credentials against the web service's own
``/metrics``: tests/unit/test_metrics_port.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from dataplatform.cli import app
from dataplatform.kafka.process import free_port
from tests.support.kafka import create_topic
from tests.support.sinks import make_product
from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
TOKEN = "metrics-reader-Secret-token"


@pytest.fixture(params=["secured", "open"])
def read_token(request: pytest.FixtureRequest) -> str | None:
    return TOKEN if request.param == "secured" else None


def check_port(command: list[str], env: dict[str, str], metric: str, read_token: str | None) -> None:
    """Start ``command`` serving metrics on a port of its own; check what a scrape gets with
    and without credentials; stop it with SIGTERM and check its output."""
    port = free_port()
    env = {**env, "API_READ_TOKEN": read_token} if read_token else env
    process = subprocess.Popen([sys.executable, "-m", "dataplatform.cli", *command, "--metrics-port", str(port)],
                               cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/metrics"

    def scrape(headers: dict[str, str] | None = None) -> httpx.Response | None:
        try:
            return httpx.get(url, headers=headers, timeout=5)
        except httpx.TransportError:
            return None

    try:
        wait_until(lambda: process.poll() is not None or scrape() is not None, timeout=60,
                   message=f"{command[:2]} to serve {url}")
        assert process.poll() is None, process.communicate()[0]
        anonymous = scrape()
        if read_token:
            assert anonymous.status_code == 401, anonymous.text
            assert anonymous.json()["error_code"] == 40101 and "Bearer" in anonymous.headers["www-authenticate"]
            assert scrape({"Authorization": "Bearer not-the-token"}).status_code == 403
            answer = scrape({"Authorization": f"Bearer {TOKEN}"})
        else:
            answer = anonymous
        assert answer.status_code == 200 and f"# HELP {metric}" in answer.text, answer.text
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=60)[0]
    assert process.returncode == 0, output
    assert TOKEN not in output
    assert ("API_READ_TOKEN or API_WRITE_TOKEN needed" if read_token else "open: no API_READ_TOKEN") in output, output


def test_a_sinks_metrics_port_needs_the_read_token_once_set(tmp_path: Path, bootstrap: str, registry_url: str,
                                                           read_token: str | None):
    product = make_product(tmp_path / "products")
    create_topic(bootstrap, product.topic)
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "SCHEMA_REGISTRY_URL": registry_url,
           "DATAPLATFORM_HOME": str(tmp_path / "home")}
    check_port(["sink", "sql", "--topic", product.topic, "--products-root", str(tmp_path / "products"),
                "--database-url", f"sqlite:///{tmp_path / 'sink.db'}"], env, "dataplatform_sink_rows_total", read_token)


def test_an_outbox_relays_metrics_port_needs_the_read_token_once_set(tmp_path: Path, bootstrap: str,
                                                                    registry_url: str, topic: str,
                                                                    read_token: str | None):
    url = f"sqlite:///{tmp_path / 'service.db'}"
    created = CliRunner().invoke(app, ["outbox", "init", "--database-url", url])
    assert created.exit_code == 0, created.output
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "SCHEMA_REGISTRY_URL": registry_url}
    check_port(["outbox", "relay", "--database-url", url, "--product", "social_housing_availability", "--topic", topic],
               env, "dataplatform_outbox_lag_seconds", read_token)
