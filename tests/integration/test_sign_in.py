"""Signing in from a browser when reads are protected (real headless Chromium).

With ``API_READ_TOKEN`` set, a page asks for the token once, keeps it in an HttpOnly,
Secure, SameSite=Strict cookie, and the catalogue and live warnings then work; the cookie
never opens a write.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import SecretStr

from dataplatform.config import Settings
from dataplatform.web.server import RunningServer
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from dataplatform.web.app import create_app
from tests.support.example_products import housing_example_products

READ, WRITE = "reader-T0ken-71f3", "writer-T0ken-0b9d"
SCHEMA = json.dumps({"type": "record", "name": "T", "fields": [{"name": "a", "type": "string"}]})


def test_a_browser_signs_in_once_and_then_reads_the_protected_pages(tmp_path: Path):
    from playwright.sync_api import expect, sync_playwright

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'web.db'}", api_read_token=SecretStr(READ),
                        api_write_token=SecretStr(WRITE))
    app = create_app(settings, products_loader=housing_example_products)
    with RunningServer(app) as web, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{web.url}/warnings")
        assert page.url == f"{web.url}/sign-in?next=%2Fwarnings"
        expect(page.locator("h1")).to_have_text("Sign in")

        page.fill("#token", "not-the-token")
        page.click("#sign-in-button")
        expect(page.locator("#sign-in-error")).to_contain_text("not right")
        assert context.cookies() == []

        page.fill("#token", READ)
        page.click("#sign-in-button")
        expect(page.locator("h1")).to_have_text("Live housing shortfall warnings")
        assert page.url == f"{web.url}/warnings"
        # the page's script runs under the CSP and its live stream is authorised by the cookie
        expect(page.locator("#live-status")).to_have_text("Live: connected.", timeout=15_000)
        (cookie,) = context.cookies()
        assert (cookie["name"], cookie["value"], cookie["httpOnly"], cookie["secure"], cookie["sameSite"]) == (
            "dataplatform_token", READ, True, True, "Strict")
        assert READ not in page.evaluate("document.cookie")

        page.goto(f"{web.url}/catalogue")
        expect(page.locator("#results .result")).to_have_count(4)

        # the cookie is for reading: a script on the page cannot write with it
        status = page.evaluate("""async (schema) => (await fetch('/subjects/x-value/versions', {method: 'POST',
            headers: {'Content-Type': 'application/vnd.schemaregistry.v1+json'},
            body: JSON.stringify({schema})})).status""", SCHEMA)
        assert status == 401

        page.goto(f"{web.url}/sign-in")
        page.click("#sign-out-button")
        assert context.cookies() == []
        page.goto(f"{web.url}/catalogue?q=bedrooms")
        assert page.url == f"{web.url}/sign-in?next=%2Fcatalogue%3Fq%3Dbedrooms"
        browser.close()
