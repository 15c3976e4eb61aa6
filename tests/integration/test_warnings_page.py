"""The live warnings pages as operations use them, in headless Chromium against a real broker:
the processor's heartbeat and the late banner, the order and words of rows (live too), a
warning's evidence, owners, runbook and acknowledgements, the pictures, and the history.

Each test has its own warnings, figures and heartbeat topics; the processor is played by the
test (heartbeats, figures and warnings published as the processor publishes them).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import time
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Producer

from dataplatform.config import Settings
from dataplatform.heartbeat import Heartbeat, HeartbeatBoard, ensure_heartbeat_topic, publish_heartbeat
from dataplatform.kafka_config import client_config
from dataplatform.web.app import create_app, start_warning_follower
from dataplatform.web.server import RunningServer
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.kafka import create_topic, unique_name
from tests.support.waiting import wait_until
from tests.support.warnings import FiguresSender, WarningSender, figures, warning
from tests.support.example_products import housing_example_products

TIME_WITH_ZONE = re.compile(r"^\d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2} (GMT|BST)$")
REFRESH_S = 4  # the derived products' refresh period in these tests, so "late" comes quickly
HOUR_MS = 3_600_000


def screenshot(page, name: str) -> None:
    if os.environ.get("SCREENSHOTS"):
        page.screenshot(path=str(Path(os.environ["SCREENSHOTS"]) / name), full_page=True)


def quick_products() -> dict:
    """The real products, with derived products declaring a refresh period of a few seconds."""
    out = {}
    for name, p in housing_example_products().items():
        if p.manifest.upstreamProducts:
            p = dataclasses.replace(p, manifest=p.manifest.model_copy(
                update={"refreshPeriod": dt.timedelta(seconds=REFRESH_S)}))
        out[name] = p
    return out


@dataclasses.dataclass
class Live:
    url: str
    warnings: WarningSender
    figures: FiguresSender
    heartbeat_topic: str
    producer: Producer
    app: object

    def beat(self, product: str, age_s: float = 0.0, component: str = "processor-0") -> None:
        at = int((time.time() - age_s) * 1000)
        publish_heartbeat(self.producer, Heartbeat(component, product, last_evaluation_ms=at - 500,
                                                   last_input_event_ms=at - 2000, ts_ms=at, step_seconds=0.004),
                          self.heartbeat_topic)
        assert self.producer.flush(10) == 0


@pytest.fixture
def live(tmp_path: Path, bootstrap: str, registry_url: str):
    warnings_topic = create_topic(bootstrap, unique_name("warnings"))
    figures_topic = create_topic(bootstrap, unique_name("figures"))
    heartbeat_topic = unique_name("heartbeats")
    ensure_heartbeat_topic(bootstrap, Settings(), heartbeat_topic)
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'web.db'}", kafka_bootstrap_servers=bootstrap)
    app = create_app(settings, products_loader=quick_products)
    with RunningServer(app) as server:
        follower = start_warning_follower(app, bootstrap=bootstrap, registry_url=registry_url, topic=warnings_topic,
                                          figures_topic=figures_topic, heartbeat_topic=heartbeat_topic)
        assert follower.ready.wait(30) and app.state.heartbeats.ready.wait(30)
        yield Live(server.url, WarningSender(bootstrap, registry_url, warnings_topic),
                   FiguresSender(bootstrap, registry_url, figures_topic), heartbeat_topic,
                   Producer(client_config(bootstrap)), app)


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def open_live(browser, url: str):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{url}/warnings")
    expect(page.locator("#live-status")).to_have_text("Live: connected.", timeout=15_000)
    return page


def test_a_silent_processor_is_not_all_clear(live: Live, browser):
    """Item 1: with no warnings, the page tells a running processor from a stopped one."""
    from playwright.sync_api import expect

    page = open_live(browser, live.url)
    banner = page.locator("#processor-banner")
    expect(page.locator("#no-warnings")).to_be_visible()
    expect(banner).to_be_visible()                      # never heard from: not "all clear"
    expect(banner).to_contain_text("No heartbeat from the processor of area_supply_demand")
    expect(page.locator("#current")).to_have_class(re.compile("app-stale"))   # tiles and rows grey
    expect(page.locator("#warnings-stale")).to_contain_text("data not current")
    for product in ("area_supply_demand", "housing_shortfall_warnings"):
        live.beat(product)
    expect(banner).to_be_hidden(timeout=15_000)         # heartbeats arrive: on time
    expect(page.locator("#current")).not_to_have_class(re.compile("app-stale"))
    expect(page.locator("#warnings-stale")).to_be_hidden()
    row = page.locator("#processor-body tr[data-product='area_supply_demand']")
    expect(row.locator(".state")).to_have_text("on time")
    assert TIME_WITH_ZONE.match(row.locator(".evaluation").inner_text())
    assert TIME_WITH_ZONE.match(row.locator(".input").inner_text())
    screenshot(page, "warnings-processor-ok.png")
    # The processor stops: no event arrives, yet the page notices once the refresh period passes.
    expect(banner).to_be_visible(timeout=REFRESH_S * 1000 + 10_000)
    expect(banner).to_contain_text("more than its refresh period")
    expect(row.locator(".state")).to_have_text("late")
    expect(page.locator("#no-warnings")).to_be_visible()
    screenshot(page, "warnings-processor-late.png")
    status = httpx.get(f"{live.url}/api/processor").json()
    assert {p["derived_product"]: p["state"] for p in status["products"]} == {
        "area_supply_demand": "late", "housing_shortfall_warnings": "late"}


def test_a_restarted_web_service_knows_the_last_heartbeat_before_it_judges(bootstrap: str):
    """Item 1: a board started after the processor reported says "on time", never "never heard"
    (it reads the topic first; until then "starting"); a processor whose last heartbeat is old is
    "starting" for its refresh period from the board's start, not late at once."""
    topic = unique_name("heartbeats")
    ensure_heartbeat_topic(bootstrap, Settings(), topic)
    producer, now = Producer(client_config(bootstrap)), int(time.time() * 1000)
    for i in range(20):
        publish_heartbeat(producer, Heartbeat("processor-0", "area_supply_demand", now - 1000, now - 2000,
                                              ts_ms=now - 20_000 + i * 1000), topic)
    publish_heartbeat(producer, Heartbeat("processor-0", "housing_shortfall_warnings", None, None,
                                          ts_ms=now - HOUR_MS), topic)
    assert producer.flush(10) == 0
    board = HeartbeatBoard(bootstrap, Settings(), topic)
    periods = {"area_supply_demand": 60, "housing_shortfall_warnings": 60, "interpreter_cover": 60}
    assert {s.state for s in board.status(periods)} == {"starting"}     # not read yet: no verdict
    board.start()
    try:
        assert board.caught_up.wait(30)
        states = {s.derived_product: s.state for s in board.status(periods)}
        assert states == {"area_supply_demand": "ok", "housing_shortfall_warnings": "starting",
                          "interpreter_cover": "starting"}
        later = {s.derived_product: s.state for s in board.status(periods, at_ms=board.started_ms + 60_001)}
        assert later == {"area_supply_demand": "late", "housing_shortfall_warnings": "late",   # silent since
                         "interpreter_cover": "unknown"}
    finally:
        board.stop()


def test_rows_keep_a_stable_order_live_with_rules_explained_and_times_with_their_zone(live: Live, browser):
    """Item 2: severity, then longest raised, then area, also for rows added live."""
    from playwright.sync_api import expect

    now = int(time.time() * 1000)
    live.warnings.send(warning("E08000012", "Liverpool", "AMBER", demand=10, supply=11, raised_at_ms=now - 9 * HOUR_MS))
    live.warnings.send(warning("E08000003", "Manchester", "RED", raised_at_ms=now - 1 * HOUR_MS))
    live.warnings.send(warning("E08000006", "Salford", "RED", raised_at_ms=now - 5 * HOUR_MS))
    for code, trend in (("E08000012", ((14, 6), (12, 8), (11, 10))), ("E08000003", ((30, 20), (20, 30), (12, 41))),
                        ("E08000006", ((25, 20), (14, 35), (12, 41)))):
        for days_ago, (supply, demand) in zip((20, 9, 1), trend):
            live.figures.send(figures(code, supply=supply, demand=demand, as_of_ms=now - days_ago * 24 * HOUR_MS))
    wait_until(lambda: len(httpx.get(f"{live.url}/api/warnings").json()) == 3, timeout=30, message="3 warnings stored")
    wait_until(lambda: len(live.app.state.warnings_view.figures.series("E08000006")) == 3, timeout=30,
               message="the figures behind the trends stored")
    page = open_live(browser, live.url)
    rows = page.locator("#warnings-body tr")
    expect(rows).to_have_count(3)
    assert [r.get_attribute("data-area") for r in rows.all()] == ["Salford", "Manchester", "Liverpool"]
    expect(page.locator("#w-E08000006_shortfall .spark svg path")).to_have_count(2)
    expect(page.locator("#w-E08000012_shortfall .msg")).to_have_text("demand 10, supply 11 (next 28 days): 12 needed for 20% cover")
    first_render = page.locator("#w-E08000006_shortfall .since").inner_text()
    assert TIME_WITH_ZONE.match(first_render), first_render
    # Live: a RED raised 3 hours ago goes between Salford (5 h) and Manchester (1 h); an AMBER raised
    # earlier than Liverpool's goes before it; the same warning updated live keeps its time format.
    live.warnings.send(warning("E08000035", "Leeds", "RED", raised_at_ms=now - 3 * HOUR_MS))
    live.warnings.send(warning("E06000047", "County Durham", "AMBER", demand=20, supply=22, raised_at_ms=now - 20 * HOUR_MS))
    live.warnings.send(warning("E08000006", "Salford", "RED", transition="raised", demand=50, raised_at_ms=now - 5 * HOUR_MS))
    expect(rows).to_have_count(5, timeout=20_000)
    expect(page.locator("#w-E08000006_shortfall .demand")).to_have_text("50", timeout=20_000)
    assert [r.get_attribute("data-area") for r in rows.all()] == [
        "Salford", "Leeds", "Manchester", "County Durham", "Liverpool"]
    assert page.locator("#w-E08000006_shortfall .since").inner_text() == first_render
    assert TIME_WITH_ZONE.match(page.locator("#w-E08000035_shortfall .since").inner_text())
    # What RED and AMBER mean, the minimum volume and the slow step down, on the page itself.
    page.locator("#rules-summary summary").click()
    summary = page.locator("#rules-summary")
    expect(summary).to_contain_text("RED: less supply than demand")
    expect(summary).to_contain_text("fewer than 5 people need housing in the window are not judged")
    expect(summary).to_contain_text("steps down slowly")
    for product in ("area_supply_demand", "housing_shortfall_warnings"):   # a running processor, for the picture
        live.beat(product)
    expect(page.locator("#processor-banner")).to_be_hidden(timeout=15_000)
    screenshot(page, "warnings.png")


def test_a_warning_links_to_its_evidence_owners_runbook_and_can_be_acknowledged(live: Live, browser):
    """Items 3 and 4: evidence chart and changes, owners, runbook, acknowledgement seen by others."""
    from playwright.sync_api import expect

    now = int(time.time() * 1000)
    for days_ago, supply, demand in ((20, 9, 4), (12, 8, 6), (6, 6, 9), (2, 4, 12)):
        live.figures.send(figures("E08000012", supply=supply, demand=demand, as_of_ms=now - days_ago * 24 * HOUR_MS))
    raised_id = live.warnings.send(warning("E08000012", "Liverpool", "RED", demand=12, supply=4,
                                           raised_at_ms=now - 2 * 24 * HOUR_MS), ts_ms=now - 2 * 24 * HOUR_MS)
    wait_until(lambda: httpx.get(f"{live.url}/api/warnings").json(), timeout=30, message="the warning stored")
    before = httpx.get(f"{live.url}/api/warnings/E08000012:shortfall").json()
    colleague = open_live(browser, live.url)           # someone else watching the live page
    row = colleague.locator("#w-E08000012_shortfall")
    expect(row.locator(".ack")).to_have_text("Acknowledge")
    expect(row.locator(".spark svg path")).to_have_count(2)   # supply and demand trend in the row

    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(f"{live.url}/warnings")
    page.locator("#w-E08000012_shortfall a.area").click()
    expect(page.locator("h1")).to_contain_text("Liverpool")
    expect(page.locator("#chart svg path.supply")).to_have_count(1)
    expect(page.locator("#chart svg path.demand")).to_have_count(1)
    expect(page.locator("#chart svg desc")).to_contain_text("now supply 4, demand 12")
    expect(page.locator("#changes tbody tr")).to_have_count(3)         # three changes after the first figures
    expect(page.locator("#changes tbody tr").first).to_contain_text("demand +3 supply -2")
    owners = page.locator("#owners")
    for product, owner in (("social_housing_availability", "alex.morgan@justice.gov.uk"),
                           ("prison_releases_housing_need", "priya.shah@justice.gov.uk")):
        expect(owners.locator(f"a[href='/catalogue/{product}']")).to_have_count(1)
        expect(owners.locator(f"a[href='mailto:{owner}']")).to_have_count(1)
    page.fill("#ack-by", "Sam Patel")
    page.fill("#ack-note", "Calling Liverpool's housing lead")
    page.click("#ack-submit")
    expect(page.locator("#ack-list")).to_contain_text("Sam Patel")
    expect(page.locator("#ack-list")).to_contain_text("Calling Liverpool's housing lead")
    screenshot(page, "warning-evidence.png")
    expect(row.locator(".ack")).to_contain_text("Sam Patel", timeout=15_000)   # the colleague sees it live
    assert TIME_WITH_ZONE.match(re.sub(r"^Sam Patel, |\n.*$", "", row.locator(".ack").inner_text(), flags=re.S))
    page.click("#ack-submit")                                                 # no name: refused, says why
    expect(page.locator("#ack-error")).to_contain_text("say who is acknowledging")
    page.locator("#runbook-link").click()
    expect(page.locator("#runbook-shortfall")).to_contain_text("When a shortfall warning is raised")
    after = httpx.get(f"{live.url}/api/warnings/E08000012:shortfall").json()
    assert {k: v for k, v in after.items() if k != "acknowledgements"} == {
        k: v for k, v in before.items() if k != "acknowledgements"}           # the warning itself is unchanged
    assert after["event_id"] == raised_id and [a["by"] for a in after["acknowledgements"]] == ["Sam Patel"]

    # The figures at raising, at the latest transition and now, each labelled; the chart marks each transition
    page.goto(f"{live.url}/warnings/E08000012:shortfall")
    expect(page.locator("#figures-raised")).to_have_count(0)      # the latest transition is the raise itself
    expect(page.locator("#figures")).to_contain_text("demand 12 people, supply 4 homes")
    expect(page.locator("#figures")).to_contain_text("RED raised")
    live.figures.send(figures("E08000012", supply=11, demand=12, as_of_ms=now - 24 * HOUR_MS))
    live.warnings.send(warning("E08000012", "Liverpool", "AMBER", transition="deescalated", demand=12, supply=11,
                               raised_at_ms=now - 2 * 24 * HOUR_MS), ts_ms=now - 24 * HOUR_MS)
    live.figures.send(figures("E08000012", supply=10, demand=14, as_of_ms=now - HOUR_MS))
    wait_until(lambda: httpx.get(f"{live.url}/api/warnings/E08000012:shortfall").json()["severity"] == "AMBER",
               timeout=30, message="the step down stored")
    wait_until(lambda: "supply 10 homes" in httpx.get(f"{live.url}/warnings/E08000012:shortfall").text,
               timeout=30, message="the latest figures stored")
    page.goto(f"{live.url}/warnings/E08000012:shortfall")
    expect(page.locator("#figures-raised")).to_contain_text("demand 12 people, supply 4 homes")
    expect(page.locator("#figures-raised")).to_contain_text("RED raised")
    expect(page.locator("#figures")).to_contain_text("demand 12 people, supply 11 homes")
    expect(page.locator("#figures")).to_contain_text("AMBER deescalated")
    expect(page.locator("#figures-now")).to_contain_text("demand 14 people, supply 10 homes")
    for label in ("Figures when raised", "Figures when deescalated", "Figures now"):
        expect(page.locator("dt", has_text=label)).to_have_count(1)
    marks = page.locator("#chart svg g.transition")
    expect(marks).to_have_count(2)
    assert [m.get_attribute("data-transition") for m in marks.all()] == ["AMBER deescalated", "RED raised"]
    screenshot(page, "warning-evidence-transitions.png")


def test_region_tiles_are_coloured_by_the_worst_warning_and_follow_live(live: Live, browser):
    """Item 4: the tile map."""
    from playwright.sync_api import expect

    live.warnings.send(warning("E08000012", "Liverpool", "AMBER", demand=10, supply=11))
    wait_until(lambda: httpx.get(f"{live.url}/api/warnings").json(), timeout=30, message="the warning stored")
    page = open_live(browser, live.url)
    north_west = page.locator("#tiles a[data-region='E12000002']")
    expect(north_west).to_have_attribute("data-severity", "AMBER")
    expect(page.locator("#tiles a[data-region='E12000007']")).to_have_attribute("data-severity", "NONE")
    live.warnings.send(warning("E08000003", "Manchester", "RED"))    # also North West: the worst wins
    live.warnings.send(warning("E09000033", "Westminster", "AMBER", demand=10, supply=11))
    expect(page.locator("#tiles a[data-region='E12000002']")).to_have_attribute("data-severity", "RED", timeout=20_000)
    expect(page.locator("#tiles a[data-region='E12000007']")).to_have_attribute("data-severity", "AMBER", timeout=20_000)
    screenshot(page, "warnings-tiles.png")


def test_history_is_filterable_paged_and_live(live: Live, browser):
    """Item 5."""
    from playwright.sync_api import expect

    areas = [("E08000012", "Liverpool"), ("E08000003", "Manchester"), ("E08000035", "Leeds")]
    for i in range(60):
        code, name = areas[i % 3]
        severity = ("RED", "AMBER", "NONE")[i % 4 % 3]
        live.warnings.send(warning(code, name, severity, transition="cleared" if severity == "NONE" else "raised"))
    wait_until(lambda: httpx.get(f"{live.url}/api/warnings/history").json()["total"] == 60, timeout=60,
               message="60 transitions stored")
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(f"{live.url}/warnings/history")
    expect(page.locator("#result-count")).to_have_text("60 transitions, page 1 of 2")
    expect(page.locator("#history-body tr")).to_have_count(50)
    page.locator("#pagination a[rel='next']").click()
    expect(page.locator("#history-body tr")).to_have_count(10)
    page.goto(f"{live.url}/warnings/history")
    page.fill("#area", "liver")
    page.select_option("#severity", "RED")
    page.click("#filter-button")
    expected = sum(1 for i in range(60) if i % 3 == 0 and ("RED", "AMBER", "NONE")[i % 4 % 3] == "RED")
    expect(page.locator("#result-count")).to_have_text(f"{expected} transition{'s' if expected != 1 else ''}")
    for r in page.locator("#history-body tr").all():
        assert "Liverpool" in r.inner_text() and "RED" in r.inner_text()
    # Live: a new matching transition appears at the top; one that does not match stays out.
    live.warnings.send(warning("E08000003", "Manchester", "RED", demand=77))
    live.warnings.send(warning("E08000012", "Liverpool", "RED", demand=99))
    expect(page.locator("#history-body tr").first).to_contain_text("demand 99", timeout=20_000)
    expect(page.locator("#history-body")).not_to_contain_text("demand 77")
    expect(page.locator("#result-count")).to_have_text(f"{expected + 1} transitions")
    screenshot(page, "warnings-history.png")
    # A date range with nothing in it, and a bad one that says how to fix it.
    yesterday = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    page.goto(f"{live.url}/warnings/history?since=2020-01-01&until={yesterday}")
    expect(page.locator("#history-body")).to_contain_text("No transitions match these filters")
    page.goto(f"{live.url}/warnings/history?since=01/02/2026")
    expect(page.locator("#filter-error")).to_contain_text("use YYYY-MM-DD")
