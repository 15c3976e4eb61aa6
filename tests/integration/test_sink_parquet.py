"""The Parquet sink on a real broker and registry: files, contents, a re-run after a kill,
files rolled instead of one per batch, and `sink status` counting them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from dataplatform.config import Settings
from dataplatform.sinks.parquet import ParquetSink
from tests.support.kafka import create_topic, unique_name
from tests.support.sending import ChangeSender
from tests.support.sinks import entity, make_product
from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]


def read_rows(folder: Path) -> list[dict]:
    files = sorted(folder.glob("date=*/part-*.parquet"))
    if not files:
        return []
    return pa.concat_tables([pq.read_table(f) for f in files], promote_options="default").to_pylist()


def test_parquet_files_hold_every_event_without_personal_fields(tmp_path, bootstrap, registry_url):
    product = make_product(tmp_path / "products")
    create_topic(bootstrap, product.topic, partitions=2)
    pub = ChangeSender(bootstrap, registry_url, product)
    for i in range(8):
        pub.change("c", None, entity(i, 0))
    pub.change("d", entity(0, 0), None)
    pub.tombstone("case-0")
    pub.flush()
    out = tmp_path / "out"
    stop = threading.Event()
    sink = ParquetSink(Settings(kafka_bootstrap_servers=bootstrap, schema_registry_url=registry_url),
                       products=[product], path=str(out), group=unique_name("pq"), batch_timeout=0.2,
                       roll_seconds=0.5)
    thread = threading.Thread(target=sink.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(read_rows(out / product.name)) == 10, timeout=60, message="10 rows in Parquet")
    finally:
        stop.set()
        thread.join(30)
    files = list((out / product.name).glob("date=*/part-*-*-*.parquet"))
    assert files and not list(out.rglob("*.tmp"))
    rows = read_rows(out / product.name)
    creates = {r["case_id"]: r for r in rows if r["_op"] == "c"}
    for i in range(8):
        e = entity(i, 0)
        r = creates[f"case-{i}"]
        assert (r["status"], r["amount"], r["due"], r["updated_at"], r["address__town"]) == \
               (e["status"], e["amount"], e["due"], e["updated_at"], e["address"]["town"])
    assert sorted(r["_op"] for r in rows if r["_op"] not in "c") == ["d", "t"]
    assert "person_ref" not in rows[0] and not any("SECRET" in str(v) for r in rows for v in r.values())


def test_parquet_rerun_after_kill_writes_no_row_twice(tmp_path, bootstrap, registry_url):
    product = make_product(tmp_path / "products")
    create_topic(bootstrap, product.topic, partitions=2)
    pub = ChangeSender(bootstrap, registry_url, product)
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "SCHEMA_REGISTRY_URL": registry_url,
           "DATAPLATFORM_HOME": str(tmp_path / "home")}
    out, group = tmp_path / "out", unique_name("pq-kill")
    args = [sys.executable, "-m", "dataplatform.cli", "sink", "parquet", "--topic", product.topic, "--path", str(out),
            "--products-root", str(tmp_path / "products"), "--group", group, "--instance-id", group,
            "--batch-size", "10", "--batch-timeout", "0.05", "--roll-seconds", "0.3"]
    produced = 0
    for _ in range(3):
        before = len(read_rows(out / product.name))
        proc = subprocess.Popen(args, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(40):
            pub.change("c", None, entity(produced, 0))
            produced += 1
        pub.flush()
        wait_until(lambda: len(read_rows(out / product.name)) > before or proc.poll() is not None, timeout=60,
                   message="progress before the kill")
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    proc = subprocess.Popen(args, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: len(read_rows(out / product.name)) >= produced, timeout=60, message=f"{produced} rows")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    rows = read_rows(out / product.name)
    assert len(rows) == produced == 120
    assert len({(r["_kafka_partition"], r["_kafka_offset"]) for r in rows}) == 120
    assert sorted(r["case_id"] for r in rows) == sorted(f"case-{i}" for i in range(120))


def test_a_trickle_of_small_batches_makes_one_file_per_partition_not_one_per_batch(tmp_path, bootstrap, registry_url):
    product = make_product(tmp_path / "products")
    create_topic(bootstrap, product.topic, partitions=2)
    pub = ChangeSender(bootstrap, registry_url, product)
    out, settings = tmp_path / "out", Settings(kafka_bootstrap_servers=bootstrap, schema_registry_url=registry_url)
    stop = threading.Event()
    sink = ParquetSink(settings, products=[product], path=str(out), group=unique_name("pq-roll"),
                       batch_timeout=0.05, roll_seconds=3600, roll_size_mb=64)
    thread = threading.Thread(target=sink.run, args=(stop,), daemon=True)
    thread.start()
    try:
        for round_ in range(12):  # 12 trickles of 25 events, each written as its own batch
            for i in range(25):
                pub.change("c", None, entity(round_ * 25 + i, 0))
            pub.flush()
            wait_until(lambda: sink.rows_written >= (round_ + 1) * 25, timeout=60, message=f"round {round_} read")
        assert sink.batches_written >= 12
        assert not read_rows(out / product.name)  # still gathering: nothing is a small file yet
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
    files = sorted((out / product.name).glob("date=*/part-*.parquet"))
    partitions = {int(f.name.split("-")[1]) for f in files}
    assert len(files) == len(partitions) <= 2  # a clean stop wrote one file per partition and day
    rows = read_rows(out / product.name)
    assert sorted(r["case_id"] for r in rows) == sorted(f"case-{i}" for i in range(300))

    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "DATAPLATFORM_HOME": str(tmp_path / "home")}
    status = subprocess.run([sys.executable, "-m", "dataplatform.cli", "sink", "status", "--parquet-path", str(out),
                             "--products-root", str(tmp_path / "products"), "--json"],
                            env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert status.returncode == 0, status.stderr
    lines = [r for r in json.loads(status.stdout) if r["topic"] == product.topic]
    assert sum(r["rows_written"] for r in lines) == 300 and sum(r["files"] for r in lines) == len(files)
    assert all(r["lag"] == 0 for r in lines)
