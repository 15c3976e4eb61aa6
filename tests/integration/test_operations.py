"""Operations: live warnings on the web page (real Chromium), in the terminal, and as
signed webhooks delivered exactly once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from pydantic import SecretStr

from dataplatform.config import Settings
from dataplatform.warnings.webhooks import EVENT_ID_HEADER, SIGNATURE_HEADER, verify_signature
from dataplatform.web.app import create_app, start_warning_follower
from dataplatform.web.server import RunningServer
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.kafka import create_topic, unique_name
from tests.support.waiting import wait_until
from tests.support.warnings import WarningSender, warning

SECRET = "webhook-secret"


class Receiver:
    """A webhook receiver on loopback that fails the first ``fail_first`` requests."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first, self.requests, self.accepted = fail_first, 0, []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests += 1
                if receiver.requests <= receiver.fail_first:
                    self.send_response(503)
                else:
                    receiver.accepted.append((body, dict(self.headers)))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def warnings_topic(bootstrap: str) -> str:
    return create_topic(bootstrap, unique_name("warnings"))


@pytest.fixture
def receivers():
    made = [Receiver(), Receiver(fail_first=2)]
    yield made
    for r in made:
        r.close()


@pytest.fixture
def web(tmp_path: Path, bootstrap: str, registry_url: str, warnings_topic: str, receivers):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'web.db'}", kafka_bootstrap_servers=bootstrap,
                        webhook_urls=",".join(r.url for r in receivers), webhook_secret=SecretStr(SECRET))
    app = create_app(settings)
    with RunningServer(app) as server:
        follower = start_warning_follower(app, bootstrap=bootstrap, registry_url=registry_url, topic=warnings_topic)
        assert follower.ready.wait(30), "the warning follower did not start"
        yield server


def test_webhooks_get_each_transition_once_signed_even_after_failures(web, bootstrap, registry_url, warnings_topic, receivers):
    pub = WarningSender(bootstrap, registry_url, warnings_topic)
    raised_id = pub.send(warning(severity="AMBER", transition="raised", demand=10, supply=11))
    pub.send(warning(severity="RED", transition="escalated", demand=14, supply=11))
    pub.send(warning(severity="RED", transition="raised"), event_id=raised_id)  # a redelivered event
    pub.send(warning(severity="NONE", transition="cleared", demand=10, supply=30))
    for r in receivers:
        wait_until(lambda: len(r.accepted) >= 3, timeout=60, message=f"3 deliveries to {r.url}")
    for r in receivers:
        bodies = [json.loads(b) for b, _ in r.accepted]
        assert [b["transition"] for b in bodies] == ["raised", "escalated", "cleared"]
        assert len({h[EVENT_ID_HEADER] for _, h in r.accepted}) == 3
        for body, headers in r.accepted:
            assert verify_signature(body, headers[SIGNATURE_HEADER], SECRET)
            assert not verify_signature(body, headers[SIGNATURE_HEADER], "another-secret")
    assert receivers[1].requests == 5  # two refusals, then three deliveries


def test_warnings_page_shows_a_simulated_shortage_live_and_drops_it_when_housing_arrives(
        tmp_path: Path, bootstrap: str, registry_url: str):
    """The real pipeline: releases and housing published with the SDK, joined by a Faust
    worker, followed by the web service, watched in headless Chromium."""
    from playwright.sync_api import expect, sync_playwright

    from dataplatform.producers.publisher import Publisher
    from dataplatform.products.product import load_products
    from dataplatform.stream_processors.config import ProcessorConfig
    from dataplatform.stream_processors.deployment.pool import start_workers
    from tests.support.entities import housing_unit, release_case

    prefix = unique_name("live") + "."
    config = ProcessorConfig(app_id=f"{prefix}processor", topic_prefix=prefix, partitions=2, tick_seconds=2,
                             datadir=str(tmp_path / "processor"))
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'web.db'}", kafka_bootstrap_servers=bootstrap,
                        schema_registry_url=registry_url)
    pool = start_workers(1, settings, config)
    products = load_products()
    app = create_app(settings)

    def publisher(name: str, service: str) -> Publisher:
        return Publisher(products[name], source_system=service, settings=settings, topic=config.topic(name))

    try:
        with RunningServer(app) as web, sync_playwright() as p:
            follower = start_warning_follower(app, bootstrap=bootstrap, registry_url=registry_url,
                                              topic=config.topic("housing_shortfall_warnings"))
            assert follower.ready.wait(30)
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.goto(f"{web.url}/warnings")
            expect(page.locator("#live-status")).to_have_text("Live: connected.", timeout=15_000)
            expect(page.locator("#no-warnings")).to_be_visible()
            with publisher("prison_releases_housing_need", "releases-service") as releases:
                for i in range(8):
                    releases.created(release_case(f"LIVE-C{i}", "E08000012", "E12000002"))
            row = page.locator("tr[data-warning-id='E08000012:shortfall']")
            expect(row).to_be_visible(timeout=120_000)
            expect(row.locator(".sev")).to_have_text("RED")
            expect(row.locator(".area")).to_have_text("Liverpool")
            if os.environ.get("SCREENSHOTS"):
                page.screenshot(path=os.environ["SCREENSHOTS"] + "/warnings-pipeline.png", full_page=True)
            with publisher("social_housing_availability", "housing-service") as housing:
                for i in range(12):
                    housing.created(housing_unit(f"LIVE-U{i}", "E08000012", "E12000002"))
            expect(row).to_have_count(0, timeout=120_000)
            page.goto(f"{web.url}/warnings/history")
            expect(page.locator("table")).to_contain_text("cleared")
            browser.close()
    finally:
        pool.stop()


def test_warnings_tail_prints_json_lines(bootstrap, registry_url, warnings_topic):
    pub = WarningSender(bootstrap, registry_url, warnings_topic)
    pub.send(warning(severity="RED"))
    pub.send(warning(severity="NONE", transition="cleared"))
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "SCHEMA_REGISTRY_URL": registry_url}
    out = subprocess.run([sys.executable, "-m", "dataplatform.cli.__main__", "warnings", "tail", "--topic", warnings_topic,
                          "--from-beginning", "--json", "--max", "2", "--timeout", "60"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(w["severity"], w["transition"]) for w in lines] == [("RED", "raised"), ("NONE", "cleared")]
