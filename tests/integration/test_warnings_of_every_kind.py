"""Every derivation's warnings on the live side, in headless Chromium against a real broker:
an interpreter shortage beside a housing shortfall on the live page (rendered and live),
its own page, the rules page, the store keeping each row's product and resuming per
product, and ``dataplatform warnings tail`` printing both kinds.

Each test has its own topic per warnings product; the processors are played by the test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from confluent_kafka import Producer

from dataplatform.config import Settings
from dataplatform.heartbeat import Heartbeat, ensure_heartbeat_topic, publish_heartbeat
from dataplatform.kafka_config import client_config
from dataplatform.web.app import create_app, start_warning_follower, stop_warning_follower
from dataplatform.web.server import RunningServer
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.kafka import create_topic, unique_name
from tests.support.waiting import wait_until
from tests.support.warnings import InterpreterWarningSender, WarningSender, interpreter_warning, warning

HOUSING, INTERPRETERS = "housing_shortfall_warnings", "interpreter_shortage_warnings"
HOUR_MS = 3_600_000


@pytest.fixture
def topics(bootstrap: str) -> dict[str, str]:
    return {HOUSING: create_topic(bootstrap, unique_name("housing-warnings")),
            INTERPRETERS: create_topic(bootstrap, unique_name("interpreter-warnings"))}


@pytest.fixture
def web(tmp_path: Path, bootstrap: str, registry_url: str, topics: dict[str, str]):
    heartbeat_topic = unique_name("heartbeats")
    ensure_heartbeat_topic(bootstrap, Settings(), heartbeat_topic)
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'web.db'}", kafka_bootstrap_servers=bootstrap))

    def start():
        follower = start_warning_follower(app, bootstrap=bootstrap, registry_url=registry_url, warnings_topics=topics,
                                          figures_topic=create_topic(bootstrap, unique_name("figures")),
                                          heartbeat_topic=heartbeat_topic)
        assert follower.ready.wait(30), "the warning follower did not start"

    with RunningServer(app) as server:
        start()
        yield SimpleNamespace(url=server.url, app=app, heartbeat_topic=heartbeat_topic,
                              restart=lambda: (stop_warning_follower(app), start()))


def current(url: str) -> list[dict]:
    return httpx.get(f"{url}/api/warnings").json()


def test_an_interpreter_shortage_shows_on_the_live_page_beside_housing(web, bootstrap, registry_url, topics):
    from playwright.sync_api import expect, sync_playwright

    now = int(time.time() * 1000)
    housing = WarningSender(bootstrap, registry_url, topics[HOUSING])
    courts = InterpreterWarningSender(bootstrap, registry_url, topics[INTERPRETERS])
    housing.send(warning("E08000012", "Liverpool", "RED", raised_at_ms=now - 5 * HOUR_MS))
    polish = interpreter_warning(hearings=4, bookings=1, raised_at_ms=now - 2 * HOUR_MS)
    courts.send(polish)
    wait_until(lambda: len(current(web.url)) == 2, timeout=30, message="both warnings stored")
    by_product = {w["product"]: w for w in current(web.url)}
    court = by_product[INTERPRETERS]
    # The store's shared columns come from the spec: the code from the warning id, the name
    # from the field computed as group.name, have and need from the rule's measures.
    assert (court["group_code"], court["group_name"], court["need"], court["have"]) == (
        polish["warning_id"].removesuffix(":interpreter_shortfall"), polish["group_name"], 4, 1)
    assert court["court_name"] == "Peterborough Magistrates' Court" and court["hearing_date"] == polish["hearing_date"].isoformat()
    assert (by_product[HOUSING]["group_name"], by_product[HOUSING]["area_name"]) == ("Liverpool", "Liverpool")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{web.url}/warnings")
        expect(page.locator("#live-status")).to_have_text("Live: connected.", timeout=15_000)
        rows = page.locator("#warnings-body tr")
        expect(rows).to_have_count(2)
        assert [r.get_attribute("data-product") for r in rows.all()] == [HOUSING, INTERPRETERS]  # raised earlier first
        row = page.locator(f"tr[data-warning-id='{polish['warning_id']}']")
        expect(row.locator(".area")).to_have_text(f"Peterborough Magistrates' Court · {polish['hearing_date']} · Polish")
        expect(row.locator(".msg")).to_have_text("hearings 4 > bookings 1 (next 7 days)")
        expect(row.locator(".demand")).to_have_text("4")
        expect(row.locator(".supply")).to_have_text("1")
        assert (row.locator(".demand").get_attribute("data-unit"), row.locator(".supply").get_attribute("data-unit")) == (
            "hearings", "interpreters")
        expect(row.locator(".spark")).to_have_text("no trend kept")          # not a housing trend, and says so
        expect(page.locator("#tiles-note")).to_contain_text("interpreter shortage warnings are not kept by area")
        expect(page.locator("#kinds li")).to_have_count(2)
        # Live: a second court's shortage arrives while the page is open, and a clear removes the first.
        urdu = interpreter_warning("MCRCC", "Manchester Crown Court (Crown Square)", language="urd",
                                   language_name="Urdu", hearings=3, bookings=0, raised_at_ms=now - 1 * HOUR_MS)
        courts.send(urdu)
        live_row = page.locator(f"tr[data-warning-id='{urdu['warning_id']}']")
        expect(live_row.locator(".area")).to_contain_text("Manchester Crown Court (Crown Square) · ", timeout=20_000)
        expect(live_row.locator(".msg")).to_have_text("hearings 3 > bookings 0 (next 7 days)")
        expect(live_row.locator(".spark")).to_have_text("no trend kept")
        expect(rows).to_have_count(3)
        beat = Producer(client_config(bootstrap))   # both processors running: no late banner over the rows
        at = int(time.time() * 1000)
        for product in ("area_supply_demand", HOUSING, "interpreter_cover", INTERPRETERS):
            publish_heartbeat(beat, Heartbeat("processor-0", product, last_evaluation_ms=at, last_input_event_ms=at,
                                              ts_ms=at), web.heartbeat_topic)
        assert beat.flush(10) == 0
        expect(page.locator("#processor-banner")).to_be_hidden(timeout=15_000)
        if os.environ.get("SCREENSHOTS"):
            page.screenshot(path=str(Path(os.environ["SCREENSHOTS"]) / "warnings-every-kind.png"), full_page=True)
        courts.send({**polish, "severity": "NONE", "transition": "cleared", "bookings": 4, "raised_at": None,
                     "message": "NONE cleared  " + polish["group_name"] + "  hearings 4, bookings 4 (next 7 days): covered"})
        expect(row).to_have_count(0, timeout=20_000)
        expect(rows).to_have_count(2)

        # Its own page: the figures in the rule's words, no housing chart, the owners of its inputs,
        # and an acknowledgement (the id holds '/', the composite key's separator).
        live_row.locator("a.area").click()
        expect(page.locator("h1")).to_contain_text("Manchester Crown Court (Crown Square)")
        expect(page.locator("#figures")).to_contain_text("hearings 3, bookings 0 interpreters (next 7 days)")
        expect(page.locator("#no-chart")).to_be_visible()
        expect(page.locator("#chart")).to_have_count(0)
        for product in ("interpreter_cover", "court_hearings_interpreter_need", "interpreter_bookings"):
            expect(page.locator(f"#owners a[href='/catalogue/{product}']")).to_have_count(1)
        page.fill("#ack-by", "Listing office")
        page.click("#ack-submit")
        expect(page.locator("#ack-list")).to_contain_text("Listing office")
        page.locator("#runbook-link").click()
        expect(page.locator("#rule-interpreter_shortfall")).to_contain_text("published on interpreter_shortage_warnings")
        expect(page.locator("#rule-shortfall")).to_contain_text("published on housing_shortfall_warnings")
        browser.close()
    assert [a["by"] for a in httpx.get(f"{web.url}/api/warnings/{urdu['warning_id']}/acknowledgements").json()] == [
        "Listing office"]


def test_rows_keep_their_product_and_a_restart_resumes_each_product(web, bootstrap, registry_url, topics):
    housing = WarningSender(bootstrap, registry_url, topics[HOUSING])
    courts = InterpreterWarningSender(bootstrap, registry_url, topics[INTERPRETERS])
    housing.send(warning("E08000003", "Manchester", "RED"))
    courts.send(interpreter_warning())
    courts.send(interpreter_warning(language="urd", language_name="Urdu"))

    def history() -> list[dict]:
        return httpx.get(f"{web.url}/api/warnings/history").json()["transitions"]

    wait_until(lambda: len(history()) == 3, timeout=30, message="3 transitions stored")
    web.restart()
    follower = web.app.state.warning_follower
    assert follower.resume() == {(topics[HOUSING], 0): 1, (topics[INTERPRETERS], 0): 2}   # each after its own rows
    housing.send(warning("E08000003", "Manchester", "AMBER", transition="deescalated", demand=10, supply=11))
    wait_until(lambda: len(history()) == 4, timeout=30, message="the transition after the restart stored")
    rows = history()
    assert sorted((r["product"], r["kafka_offset"]) for r in rows) == [
        (HOUSING, 0), (HOUSING, 1), (INTERPRETERS, 0), (INTERPRETERS, 1)]
    assert len({r["event_id"] for r in rows}) == 4
    assert follower.resume() == {(topics[HOUSING], 0): 2, (topics[INTERPRETERS], 0): 2}


def test_warnings_tail_prints_both_kinds(bootstrap, registry_url, topics):
    WarningSender(bootstrap, registry_url, topics[HOUSING]).send(warning("E08000012", "Liverpool", "RED"))
    court = interpreter_warning(hearings=2, bookings=0)
    InterpreterWarningSender(bootstrap, registry_url, topics[INTERPRETERS]).send(court)
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "SCHEMA_REGISTRY_URL": registry_url}

    def tail(*extra: str) -> subprocess.CompletedProcess:
        out = subprocess.run([sys.executable, "-m", "dataplatform.cli.__main__", "warnings", "tail",
                              "--topic", topics[HOUSING], "--topic", topics[INTERPRETERS], "--from-beginning",
                              "--max", "2", "--timeout", "60", *extra], capture_output=True, text=True, env=env,
                             timeout=120)
        assert out.returncode == 0, out.stderr
        return out

    lines = sorted((json.loads(line) for line in tail("--json").stdout.splitlines()), key=lambda w: w["product"])
    assert [(w["product"], w["severity"]) for w in lines] == [(HOUSING, "RED"), (INTERPRETERS, "RED")]
    assert lines[1]["court_name"] == "Peterborough Magistrates' Court" and lines[1]["hearing_date"] == court["hearing_date"].isoformat()
    printed = tail().stdout.splitlines()
    assert court["message"] in printed
    assert any(line.startswith("RED raised  Liverpool  demand 41 > supply 12") for line in printed)
