"""`dataplatform query` over what real sinks wrote from a real broker: events published,
kept by the SQL and Parquet sinks, then asked about from the terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from dataplatform.config import Settings
from dataplatform.sinks.parquet import ParquetSink
from dataplatform.sinks.sql.tables import table_name
from dataplatform.sinks.sql.writer import SqlSink
from tests.support.kafka import create_topic, unique_name
from tests.support.sending import ChangeSender
from tests.support.sinks import entity, make_product
from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]


def test_query_answers_from_the_tables_and_files_the_sinks_keep(tmp_path, bootstrap, registry_url):
    product = make_product(tmp_path / "products")
    create_topic(bootstrap, product.topic, partitions=2)
    pub = ChangeSender(bootstrap, registry_url, product)
    for i in range(20):
        pub.change("c", None, entity(i, 0))
    for i in range(5):  # five cases change: 25 events, 20 current rows
        pub.change("u", entity(i, 0), entity(i, 1))
    pub.flush()
    home = tmp_path / "home"
    home.mkdir()
    settings = Settings(kafka_bootstrap_servers=bootstrap, schema_registry_url=registry_url)
    stop = threading.Event()
    sinks = [SqlSink(settings, products=[product], database_url=f"sqlite:///{home / 'analytics.db'}",
                     group=unique_name("q-sql"), batch_timeout=0.1),
             ParquetSink(settings, products=[product], path=str(home / "parquet"), group=unique_name("q-pq"),
                         batch_timeout=0.1)]
    threads = [threading.Thread(target=s.run, args=(stop,), daemon=True) for s in sinks]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: all(s.rows_written >= 25 for s in sinks), timeout=60, message="both sinks read 25 events")
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    env = {**os.environ, "DATAPLATFORM_HOME": str(home), "COLUMNS": "200"}
    env.pop("DATABASE_URL", None)

    def query(sql: str, *flags: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "dataplatform.cli", "query", sql, *flags, "--products-root",
                               str(tmp_path / "products")], env=env, cwd=REPO, capture_output=True, text=True,
                              timeout=120)

    table = table_name(product.topic)
    answer = query(f"""SELECT (SELECT count(*) FROM {table}) AS current_rows,
                              (SELECT count(*) FROM parquet.{product.name}) AS events,
                              (SELECT count(*) FROM parquet.{product.name} WHERE _op = 'u') AS updates,
                              (SELECT count(*) FROM {table} WHERE status = 'closed') AS closed""", "--json")
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout) == [{"current_rows": 20, "events": 25, "updates": 5, "closed": 5}]
    missing = query("SELECT * FROM parquet.no_such_product")
    assert missing.returncode == 1 and f"parquet.{product.name}" in missing.stderr
