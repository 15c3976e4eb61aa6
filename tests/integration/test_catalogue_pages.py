"""The catalogue in headless Chromium, on a real broker: how to use a product, freshness
that tells a quiet on-change product from a dead producer, pages served from the
background cache in milliseconds, search with filters, and the API docs with the
network cut."""

from __future__ import annotations

import statistics
import time
import uuid
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Consumer

from dataplatform.config import Settings
from dataplatform.kafka_config import client_config
from dataplatform.web.app import create_app
from dataplatform.web.server import RunningServer
from dataplatform.products.product import load_products
from tests.support.browser import chromium, cut_network, screenshot
from tests.support.kafka import create_topic
from tests.support.sending import ChangeSender
from tests.support.sinks import entity, make_product
from tests.support.example_products import housing_example_products
from tests.support.waiting import wait_until

THREE_HOURS_AGO_MS = int((time.time() - 3 * 3600) * 1000)


@pytest.fixture
def catalogue(tmp_path: Path, bootstrap: str, registry_url: str):
    """The web service over the example products plus two test products with their own
    topics: ``arrivals`` (periodic, every minute) and ``alerts`` (on change, computed from
    arrivals by consumer group ``producer_group``). Both last published three hours ago."""
    suffix = uuid.uuid4().hex[:8]
    root = tmp_path / "products"
    producer_group = f"alerts-processor-{suffix}"
    arrivals = make_product(root, f"arrivals_{suffix}", title="Arrivals (test)", refreshMode="periodic")
    alerts = make_product(root, f"alerts_{suffix}", title="Alerts (test)", refreshMode="on-change",
                          producerGroup=producer_group, upstreamProducts=[arrivals.name])
    for product in (arrivals, alerts):
        create_topic(bootstrap, product.topic)
        pub = ChangeSender(bootstrap, registry_url, product)
        pub.change("c", None, entity(1), timestamp_ms=THREE_HOURS_AGO_MS)
        pub.flush()
    products = {**housing_example_products(), **load_products(root)}
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'web.db'}", kafka_bootstrap_servers=bootstrap,
                        schema_registry_url=registry_url, catalogue_refresh_seconds=0.5,
                        dataplatform_home=tmp_path / "home")
    app = create_app(settings, products_loader=lambda: products)
    with RunningServer(app) as server:
        yield server, app, arrivals, alerts, producer_group


def running_producer(bootstrap: str, group: str, topic: str) -> Consumer:
    """A live member of ``group`` that has read ``topic`` to its end and committed."""
    consumer = Consumer({**client_config(bootstrap), "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    consumer.subscribe([topic])
    wait_until(lambda: (msg := consumer.poll(0.5)) is not None and not msg.error(), timeout=60,
               message="the producer group read its input")
    consumer.commit(asynchronous=False)
    return consumer


def status_after_refresh(page, url: str, expected: str) -> bool:  # noqa: ANN001
    page.goto(url)
    return page.locator("#freshness-status").inner_text() == expected


def test_freshness_tells_a_quiet_on_change_product_from_a_stopped_producer(catalogue, bootstrap):
    server, app, arrivals, alerts, producer_group = catalogue
    producer = running_producer(bootstrap, producer_group, arrivals.topic)
    try:
        with chromium() as page:
            page.goto(f"{server.url}/catalogue/{arrivals.name}")
            wait_until(lambda: status_after_refresh(page, f"{server.url}/catalogue/{arrivals.name}", "Stale"),
                       timeout=60, message="the periodic product called stale")
            assert "refresh period (1 minute)" in page.locator("#freshness-reason").inner_text()

            alerts_url = f"{server.url}/catalogue/{alerts.name}"
            wait_until(lambda: status_after_refresh(page, alerts_url, "Current"), timeout=60,
                       message="the on-change product current while its producer runs")
            assert "the producer is running" in page.locator("#freshness-reason").inner_text()
            assert page.locator("#last-event").inner_text().endswith("UTC")  # three hours old, and that is fine
            screenshot(page, "catalogue-freshness.png")

            producer.close()
            producer = None
            wait_until(lambda: status_after_refresh(page, alerts_url, "Stale"), timeout=60,
                       message="the on-change product stale once its producer stopped")
            assert f"consumer group {producer_group} has no live member" in page.locator("#freshness-reason").inner_text()
    finally:
        if producer is not None:
            producer.close()


def test_a_product_page_is_served_from_the_cache_in_under_100_ms(catalogue):
    server, app, arrivals, _alerts, _group = catalogue
    url = f"{server.url}/catalogue/{arrivals.name}"
    with httpx.Client(timeout=10) as client:
        wait_until(lambda: 'id="freshness-status">Stale' in client.get(url).text, timeout=60,
                   message="Kafka facts in the cache")
        timings = []
        for _ in range(20):
            started = time.perf_counter()
            response = client.get(url)
            timings.append(time.perf_counter() - started)
            assert response.status_code == 200
    assert statistics.median(timings) < 0.1, f"median {statistics.median(timings) * 1000:.0f} ms"
    with chromium() as page:  # the same, seen from the browser: request sent to last byte received
        served = []
        for _ in range(7):
            page.goto(url)
            served.append(page.evaluate("() => { const n = performance.getEntriesByType('navigation')[0];"
                                        " return n.responseEnd - n.requestStart; }"))
    assert statistics.median(served) < 100, f"{statistics.median(served):.0f} ms in the browser ({served})"


def test_a_product_page_says_how_to_use_the_data(catalogue):
    server, *_ = catalogue
    with chromium() as page:
        page.goto(f"{server.url}/catalogue")
        page.fill("#q", "expected_release_date")
        page.click("#search-button")
        results = page.locator("#results .result")
        from playwright.sync_api import expect

        expect(results).to_have_count(1)
        expect(results.first).to_have_attribute("data-product", "prison_releases_housing_need")
        results.first.locator("h2 a").click()
        expect(page.locator("h1")).to_have_text("Housing need of people leaving prison")
        expect(page.locator("#machine-name")).to_have_text("prison_releases_housing_need")
        usage = page.locator("#usage")
        for text in ("hmpps.prison_releases_housing_need.v1", "hmpps.prison_releases_housing_need.v1-value",
                     "case_id", "hmpps__prison_releases_housing_need__v1", "/parquet/prison_releases_housing_need/"):
            expect(usage).to_contain_text(text)
        expect(page.locator("#consume-command")).to_have_text(
            "dataplatform consume hmpps.prison_releases_housing_need.v1 --from-beginning --max 10")
        expect(page.locator("#example-event")).to_contain_text('"op": "u"')
        expect(page.locator("#python-snippet")).to_contain_text('consumer.subscribe(["hmpps.prison_releases_housing_need.v1"])')
        expect(page.locator("#dpia")).to_contain_text("approved")
        expect(page.locator("#dpia a")).to_have_attribute(
            "href", "https://intranet.justice.gov.uk/dpia/prison-releases-housing-need")
        expect(page.locator("#facts")).not_to_contain_text("Maintainer")
        expect(page.locator("#report-issue")).to_have_attribute(
            "href", "mailto:release-planning-data@justice.gov.uk?subject=Problem%20with%20data%20product%20"
                    "prison_releases_housing_need")
        expect(page.locator("#schema-table")).to_contain_text("person_ref")
        wait_until(lambda: page.reload() or page.locator("#freshness-status").inner_text() != "Checking", timeout=60,
                   message="freshness read from Kafka")
        screenshot(page, "catalogue-product.png")


def test_search_filters_by_domain_and_tag_and_helps_when_nothing_matches(catalogue):
    server, *_ = catalogue
    from playwright.sync_api import expect

    with chromium() as page:
        page.goto(f"{server.url}/catalogue")
        page.select_option("#filter-domain", "Platforms")  # submits the form
        expect(page.locator("#result-count")).to_contain_text("filtered by domain “Platforms”")
        expect(page.locator("#results .result")).to_have_count(2)
        expect(page.locator("#results")).to_contain_text("Housing shortfall warnings")
        expect(page.locator("#results .machine-name").first).to_have_text("area_supply_demand")
        page.select_option("#filter-tag", "warnings")
        expect(page.locator("#results .result")).to_have_count(1)
        screenshot(page, "catalogue-search.png")

        page.fill("#q", "bedrooms")
        page.click("#search-button")
        help_box = page.locator("#no-results")
        expect(help_box).to_be_visible()
        expect(help_box).to_contain_text("Remove the filters")
        screenshot(page, "catalogue-no-results.png")
        help_box.get_by_role("link", name="Remove the filters").click()
        expect(page.locator("#results .result")).to_have_count(1)
        expect(page.locator("#results .result").first).to_have_attribute("data-product", "social_housing_availability")


def test_api_docs_list_the_operations_with_the_network_cut(catalogue):
    server, *_ = catalogue
    from playwright.sync_api import expect

    with chromium() as page:
        refused = cut_network(page)
        page.goto(f"{server.url}/docs")
        operations = page.locator(".opblock")
        expect(operations.first).to_be_visible(timeout=30_000)
        assert operations.count() >= 10
        expect(page.locator("#swagger-ui")).to_contain_text("/api/products")
        expect(page.locator("#swagger-ui")).to_contain_text("/subjects/{subject}/versions")
        page.locator(".opblock-summary", has_text="/api/products").first.click()  # an operation opens
        expect(page.locator(".opblock-body").first).to_contain_text("Parameters")
        screenshot(page, "api-docs-offline.png")
        assert refused == [], f"the docs asked the internet for {refused}"
