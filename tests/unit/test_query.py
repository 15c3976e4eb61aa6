"""`dataplatform query`: SQL over sink tables (SQLite) and Parquet files with DuckDB, no broker.
The data is written by the sinks' own write paths, so names and columns are the real ones."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from dataplatform.config import Settings
from dataplatform.sinks.parquet import ParquetSink
from dataplatform.sinks.query import AnalystQuery, QueryError, default_database_url
from dataplatform.sinks.sql.tables import table_name
from dataplatform.sinks.sql.writer import SqlSink
from tests.support.sinks import DAY, decoded_batch, make_product

REPO = Path(__file__).resolve().parents[2]
OFFLINE = Settings(kafka_bootstrap_servers="127.0.0.1:1", schema_registry_url="http://127.0.0.1:1")


@pytest.fixture
def home(tmp_path: Path):
    """DATAPLATFORM_HOME as `dataplatform run` leaves it: analytics.db and parquet/."""
    product = make_product(tmp_path / "products", name="querytest")
    parquet = ParquetSink(OFFLINE, products=[product], path=str(tmp_path / "home" / "parquet"), compact_seconds=0)
    parquet.stored_offsets(product.topic, [0])
    parquet.write_batch(decoded_batch(parquet, product, range(0, 6)))
    parquet.write_batch(decoded_batch(parquet, product, range(6, 10), when=DAY + timedelta(days=1)))
    parquet.finish_open_files()
    sql = SqlSink(OFFLINE, products=[product], database_url=f"sqlite:///{tmp_path / 'home' / 'analytics.db'}")
    sql.open()
    sql.write_batch(decoded_batch(sql, product, range(0, 4)))
    sql.close()
    return tmp_path


def cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "DATAPLATFORM_HOME": str(home / "home"), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "dataplatform.cli", "query", *args, "--products-root",
                           str(home / "products")], capture_output=True, text=True, env=env, cwd=REPO, timeout=60)


def test_parquet_views_and_sql_tables_join_in_one_query(home):
    product = make_product(home / "products", name="querytest")
    url = default_database_url(home / "home", None)
    assert url and url.endswith("analytics.db")
    with AnalystQuery(url, str(home / "home" / "parquet"), [product]) as q:
        per_day = q.run("SELECT date, count(*) AS events FROM parquet.querytest GROUP BY date ORDER BY date")
        assert per_day.columns == ["date", "events"]
        assert [(str(d), n) for d, n in per_day.rows] == [("2026-11-27", 6), ("2026-11-28", 4)]
        joined = q.run(f"SELECT f.case_id, t.status FROM parquet.querytest f JOIN {table_name(product.topic)} t "
                       "USING (case_id) ORDER BY f.case_id")
        assert [r[0] for r in joined.rows] == ["case-0", "case-1", "case-2", "case-3"]
        names = {s.name: s for s in q.sources()}
        assert {"parquet.querytest", table_name(product.topic), "sink_offsets"} <= set(names)
        assert "person_ref" not in names["parquet.querytest"].columns  # personal data stays out


def test_a_bad_query_says_what_can_be_queried(home):
    product = make_product(home / "products", name="querytest")
    with AnalystQuery(default_database_url(home / "home", None), str(home / "home" / "parquet"), [product]) as q:
        with pytest.raises(QueryError, match=r"(?s)nope.*SQL tables: hmpps__querytest__v1.*parquet\.querytest"):
            q.run("SELECT * FROM nope")
        with pytest.raises(QueryError, match="empty"):
            q.run("  ")


def test_cli_prints_a_table_json_and_csv(home):
    table = cli(home, "SELECT case_id, amount FROM parquet.querytest ORDER BY _kafka_offset LIMIT 2")
    assert table.returncode == 0, table.stderr
    assert "case-0" in table.stdout and "case-1" in table.stdout and "2 rows" in table.stdout

    as_json = cli(home, "SELECT case_id, amount, due, updated_at FROM parquet.querytest ORDER BY _kafka_offset LIMIT 1",
                  "--json")
    assert json.loads(as_json.stdout) == [{"case_id": "case-0", "amount": "0.00", "due": "2026-01-01",
                                          "updated_at": "2026-11-27T10:00:00+00:00"}]

    as_csv = cli(home, f"SELECT case_id, tags FROM {table_name('hmpps.querytest.v1')} ORDER BY case_id", "--csv")
    parsed = list(csv.reader(io.StringIO(as_csv.stdout)))
    assert parsed[0] == ["case_id", "tags"] and parsed[1] == ["case-0", '["t0", "x"]'] and len(parsed) == 5


def test_cli_errors_exit_non_zero_with_a_reason(home):
    bad = cli(home, "SELEC oops")
    assert bad.returncode == 1 and "error: the query failed" in bad.stderr and "parquet.querytest" in bad.stderr
    assert cli(home).returncode == 1
    both = cli(home, "SELECT 1", "--json", "--csv")
    assert both.returncode == 1 and "--json" in both.stderr
    listed = cli(home, "--tables", "--json")
    assert {s["name"] for s in json.loads(listed.stdout)} >= {"parquet.querytest", "hmpps__querytest__v1"}
