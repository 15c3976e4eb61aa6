"""The product page over HTTP says what the Iceberg sink has delivered: table names,
location and snapshot count from the catalog; "not yet delivered" before the first commit;
and, when the catalog cannot be reached or never answers, a page that says so instead of
failing or hanging."""

from __future__ import annotations

import socket
import time

import httpx
import pyarrow as pa
import pyiceberg.catalog
import pytest
from pyiceberg.utils.config import Config

from dataplatform.catalogue.iceberg import ANSWER_WITHIN_S
from dataplatform.config import Settings
from dataplatform.kafka.process import free_port
from dataplatform.sinks.iceberg.catalog import open_catalog
from dataplatform.sinks.iceberg.names import table_names
from dataplatform.web.app import create_app
from dataplatform.web.server import RunningServer
from tests.support.sinks import make_product


def configure_rest_catalog(monkeypatch: pytest.MonkeyPatch, name: str, uri: str) -> None:
    """A REST catalog ``name`` in pyiceberg's environment configuration (which pyiceberg
    reads once, at import: hence the fresh Config)."""
    monkeypatch.setenv(f"PYICEBERG_CATALOG__{name.upper()}__TYPE", "rest")
    monkeypatch.setenv(f"PYICEBERG_CATALOG__{name.upper()}__URI", uri)
    monkeypatch.setattr(pyiceberg.catalog, "_ENV_CONFIG", Config())


def _page(settings: Settings, products: dict, name: str) -> str:
    app = create_app(settings, products_loader=lambda: products)
    with RunningServer(app) as server:
        response = httpx.get(f"{server.url}/catalogue/{name}", timeout=30)
    assert response.status_code == 200, response.text
    return response.text


def test_the_product_page_shows_delivered_tables_and_those_not_yet_delivered(tmp_path):
    delivered, waiting = make_product(tmp_path / "products"), make_product(tmp_path / "products")
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'web.db'}", dataplatform_home=tmp_path / "home")
    catalog = open_catalog(settings)
    names = table_names(delivered)
    catalog.create_namespace(names.namespace)
    rows = pa.table({"case_id": ["case-1"]})
    current = catalog.create_table(names.current_identifier, schema=rows.schema)
    current.append(rows)
    current.append(rows)
    history = catalog.create_table(names.history_identifier, schema=rows.schema)
    history.append(rows)
    products = {p.name: p for p in (delivered, waiting)}

    page = _page(settings, products, delivered.name)
    assert f"<code>{names.namespace}.{names.current}</code>" in page
    assert f"<code>{current.location()}</code>" in page and current.location().startswith("file://")
    snapshot_cells = [cell.split("</td>")[0] for cell in page.split('govuk-table__cell--numeric">')[1:]]
    assert snapshot_cells[-2:] == ["2", "1"]  # current state: two commits; history: one
    assert f'dataplatform query &#34;SELECT * FROM {names.namespace}.{names.current} LIMIT 10&#34;' in page
    assert (f'FROM &#34;{names.namespace}&#34;.&#34;{names.history}&#34; FOR VERSION AS OF '
            f'{history.current_snapshot().snapshot_id}') in page
    assert "Not yet delivered" not in page

    other = table_names(waiting)
    page = _page(settings, products, waiting.name)
    assert "Not yet delivered" in page and f"<code>{other.namespace}.{other.current}</code>" in page


def test_the_product_page_says_when_the_catalog_cannot_be_reached(tmp_path, monkeypatch):
    product = make_product(tmp_path / "products")
    configure_rest_catalog(monkeypatch, "unreachable", f"http://127.0.0.1:{free_port()}")
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'web.db'}", dataplatform_home=tmp_path / "home",
                        iceberg_catalog="unreachable")
    page = _page(settings, {product.name: product}, product.name)
    section = page[page.index('id="iceberg"'):page.index("iceberg-tables")]
    assert 'id="iceberg-error"' in section and "cannot be reached" in section and "ConnectionError" in section, section
    assert f"<code>{table_names(product).namespace}.{table_names(product).current}</code>" in page


def test_the_product_page_does_not_wait_for_a_catalog_that_never_answers(tmp_path, monkeypatch):
    product = make_product(tmp_path / "products")
    with socket.socket() as silent:  # accepts connections (the backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        configure_rest_catalog(monkeypatch, "silent", f"http://127.0.0.1:{silent.getsockname()[1]}")
        settings = Settings(database_url=f"sqlite:///{tmp_path / 'web.db'}", dataplatform_home=tmp_path / "home",
                            iceberg_catalog="silent")
        began = time.monotonic()
        page = _page(settings, {product.name: product}, product.name)
        assert time.monotonic() - began < ANSWER_WITHIN_S + 5
    section = page[page.index("id=\"iceberg\""):page.index("iceberg-tables")]
    assert "no answer within" in section, section
