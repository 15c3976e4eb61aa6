"""Both simulators from the command line, against the session broker and registry, and the
consume command reading what they published."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path


from dataplatform.product_io.serialization import ProductSerde, registry_client
from dataplatform.products.product import get_product
from dataplatform.products.reference import local_authorities, prisons
from tests.support.kafka import consume, end_offset, unique_name

REPO = Path(__file__).resolve().parents[2]


def cli(bootstrap: str, registry_url: str, *args: str, home: Path, timeout: float = 90) -> subprocess.CompletedProcess:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "SCHEMA_REGISTRY_URL": registry_url,
           "DATAPLATFORM_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "dataplatform.cli.__main__", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_housing_simulator_writes_its_database_and_publishes_every_change(
        bootstrap: str, registry_url: str, topic: str, tmp_path: Path) -> None:
    database = tmp_path / "housing.db"
    done = cli(bootstrap, registry_url, "simulate", "housing", "--count", "30", "--rate", "200", "--seed", "7",
               "--topic", topic, "--database", str(database), "--json", home=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["changes"] == 30 and report["published"] == 30 and report["unsent"] == 0

    messages = consume(bootstrap, topic, expected=30)
    assert end_offset(bootstrap, topic) == 30
    serde = ProductSerde(get_product("social_housing_availability"), registry_client(registry_url))
    events = [serde.deserialize_value(m.value(), topic) for m in messages]
    with sqlite3.connect(database) as db:
        units = dict(db.execute("SELECT unit_id, status FROM housing_units").fetchall())
        unsent = db.execute("SELECT count(*) FROM outbox_events WHERE sent_at IS NULL").fetchone()[0]
    assert unsent == 0
    latest = {e["after"]["unit_id"]: e["after"]["status"] for e in events}  # the topic mirrors the database
    assert latest == units
    assert {e["op"] for e in events} <= {"c", "u"} and events[0]["op"] == "c"
    assert all(e["after"]["local_authority_code"] in local_authorities() for e in events)
    assert all(local_authorities()[e["after"]["local_authority_code"]].region_code == e["after"]["region_code"]
               for e in events)


def test_releases_simulator_publishes_the_expected_events_and_consume_redacts(
        bootstrap: str, registry_url: str, topic: str, tmp_path: Path) -> None:
    done = cli(bootstrap, registry_url, "simulate", "releases", "--count", "25", "--rate", "200", "--seed", "3",
               "--topic", topic, "--json", home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["published"] == 25
    assert end_offset(bootstrap, topic) == 25
    product = get_product("prison_releases_housing_need")
    serde = ProductSerde(product, registry_client(registry_url))
    events = [serde.deserialize_value(m.value(), topic) for m in consume(bootstrap, topic, expected=25)]
    assert all(e["after"]["prison_code"] in prisons() for e in events)
    assert {e["after"]["status"] for e in events} <= {"scheduled", "released", "housed", "cancelled"}

    shown = cli(bootstrap, registry_url, "consume", topic, "--product", product.name, "--from-beginning",
                "--json", "--max", "5", "--timeout", "20", home=tmp_path)
    assert shown.returncode == 0, shown.stderr
    lines = [json.loads(line) for line in shown.stdout.splitlines()]
    assert [line["event_id"] for line in lines] == [e["source"]["event_id"] for e in events[:5]]
    assert [line["key"] for line in lines] == [e["after"]["case_id"] for e in events[:5]]
    assert all(line["after"]["person_ref"] == "***redacted***" for line in lines)
    assert lines[0]["op"] == "c" and lines[0]["after"]["prison_code"] == events[0]["after"]["prison_code"]

    personal = cli(bootstrap, registry_url, "consume", topic, "--product", product.name, "--from-beginning",
                   "--json", "--max", "1", "--timeout", "20", "--show-personal", home=tmp_path)
    assert json.loads(personal.stdout.splitlines()[0])["after"]["person_ref"] == events[0]["after"]["person_ref"]


def test_the_same_seed_gives_the_same_changes(bootstrap: str, registry_url: str, tmp_path: Path) -> None:
    from tests.support.kafka import create_topic

    runs = []
    for run in range(2):
        topic = create_topic(bootstrap, unique_name("releases-seed"))
        done = cli(bootstrap, registry_url, "simulate", "releases", "--count", "12", "--rate", "500", "--seed", "11",
                   "--topic", topic, "--json", home=tmp_path / str(run))
        assert done.returncode == 0, done.stderr
        serde = ProductSerde(get_product("prison_releases_housing_need"), registry_client(registry_url))
        events = [serde.deserialize_value(m.value(), topic) for m in consume(bootstrap, topic, expected=12)]
        runs.append([(e["op"], {k: v for k, v in e["after"].items() if k != "updated_at"}) for e in events])
    assert runs[0] == runs[1]


def test_consume_says_which_topics_have_products(bootstrap: str, registry_url: str, tmp_path: Path) -> None:
    done = cli(bootstrap, registry_url, "consume", "not-a-product-topic", "--max", "1", home=tmp_path)
    assert done.returncode == 2
    assert "no data product is published on 'not-a-product-topic'" in done.stderr
    assert get_product("social_housing_availability").topic in done.stderr
