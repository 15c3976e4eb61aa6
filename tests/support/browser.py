"""Headless Chromium for the browser tests: Debian's chromium (scripts/ensure-chromium.sh),
driven by playwright, with a network that can be cut to the local machine."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlparse

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


@contextmanager
def chromium() -> Iterator:
    """A new browser page; the browser closes afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1280, "height": 900})
        finally:
            browser.close()


def cut_network(page) -> list[str]:  # noqa: ANN001
    """Refuse every request that leaves this machine, as on a network with no internet.
    Returns the list the refused URLs are appended to."""
    refused: list[str] = []

    def route(r) -> None:  # noqa: ANN001
        url = r.request.url
        if urlparse(url).scheme in ("data", "blob") or urlparse(url).hostname in LOCAL_HOSTS:
            r.continue_()
        else:
            refused.append(url)
            r.abort("internetdisconnected")

    page.route("**/*", route)
    return refused


def screenshot(page, name: str) -> None:  # noqa: ANN001
    """Save a full-page picture into $SCREENSHOTS (docs/screenshots when making the docs)."""
    if os.environ.get("SCREENSHOTS"):
        page.screenshot(path=os.path.join(os.environ["SCREENSHOTS"], name), full_page=True)
