"""`dataplatform query` over Iceberg tables: a product's current-state and history tables in
the embedded SQL catalog (written here with pyiceberg, as the sink writes them) are
``<domain>.<product>_v<major>`` and ``..._history`` in SQL; a catalog that cannot be
reached leaves the other sources answering and says why."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa

from dataplatform.config import Settings
from dataplatform.kafka.process import free_port
from dataplatform.sinks.iceberg.catalog import open_catalog
from dataplatform.sinks.iceberg.names import table_names
from tests.support.sinks import make_product

REPO = Path(__file__).resolve().parents[2]


def _query(home: Path, products: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "DATAPLATFORM_HOME": str(home), "COLUMNS": "200", **env}
    environ.pop("DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "dataplatform.cli", "query", *args, "--products-root", str(products)],
                          env=environ, cwd=REPO, capture_output=True, text=True, timeout=120)


def test_query_reads_the_iceberg_tables_of_the_embedded_catalog(tmp_path, monkeypatch):
    home, products = tmp_path / "home", tmp_path / "products"
    product = make_product(products)
    monkeypatch.setenv("DATAPLATFORM_HOME", str(home))
    catalog = open_catalog(Settings())
    names = table_names(product)
    catalog.create_namespace(names.namespace)
    current = pa.table({"case_id": ["case-1", "case-2"], "status": ["open", "closed"]})
    history = pa.table({"case_id": ["case-1", "case-2", "case-2"], "status": ["open", "open", "closed"],
                        "_op": ["c", "c", "u"]})
    catalog.create_table(names.current_identifier, schema=current.schema).append(current)
    catalog.create_table(names.history_identifier, schema=history.schema).append(history)
    hmpps = names.namespace

    answer = _query(home, products, f"""SELECT (SELECT count(*) FROM {hmpps}.{names.current}) AS entities,
        (SELECT count(*) FROM {hmpps}.{names.history} WHERE _op = 'u') AS updates,
        (SELECT status FROM {hmpps}.{names.current} WHERE case_id = 'case-2') AS status""", "--json")
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout) == [{"entities": 2, "updates": 1, "status": "closed"}]

    listing = _query(home, products, "--tables", "--json")
    assert listing.returncode == 0, listing.stderr
    iceberg = {s["name"]: s["columns"] for s in json.loads(listing.stdout) if s["kind"] == "Iceberg table"}
    assert iceberg == {f"{hmpps}.{names.current}": ["case_id", "status"],
                       f"{hmpps}.{names.history}": ["case_id", "status", "_op"]}

    wrong = _query(home, products, f"SELECT * FROM {hmpps}.no_such_table")
    assert wrong.returncode == 1 and f"Iceberg tables: {hmpps}.{names.current}" in wrong.stderr


def test_an_unreachable_catalog_is_reported_and_the_other_sources_still_answer(tmp_path):
    home, products = tmp_path / "home", tmp_path / "products"
    home.mkdir()
    make_product(products)
    closed = f"http://127.0.0.1:{free_port()}"
    answer = _query(home, products, "SELECT 41 + 1 AS answer", "--json",
                    PYICEBERG_CATALOG__DATAPLATFORM__TYPE="rest", PYICEBERG_CATALOG__DATAPLATFORM__URI=closed)
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout) == [{"answer": 42}]
    assert "the Iceberg catalog cannot be read" in answer.stderr
