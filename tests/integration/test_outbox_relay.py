"""The outbox relay, run as `dataplatform outbox relay` and killed with SIGKILL at seeded
points, publishes every committed change at least once and in per-entity order (SQLite and
PostgreSQL); an undisturbed run then publishes the rest, shows lag 0 on /metrics, and stops
cleanly on SIGTERM."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import re
import signal
import subprocess
import sys
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, create_engine, func, make_url, select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from dataplatform.cli import app
from dataplatform.kafka.process import free_port
from dataplatform.product_io.serialization import ProductSerde, registry_client
from dataplatform.producers.outbox import outbox_table, record_change
from dataplatform.products.envelope import ChangeEvent
from dataplatform.products.product import get_product
from tests.support.entities import housing_unit, release_case
from tests.support.kafka import consume, end_offset
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import wait_until

HOUSING = get_product("social_housing_availability")
RELEASES = get_product("prison_releases_housing_need")
REPO = Path(__file__).resolve().parents[2]
ENTITIES = 5


def relay_command(url: str, table: str, topic: str, *extra: str) -> list[str]:
    """The relay a service team runs, publishing the housing product to the test's topic."""
    return [sys.executable, "-m", "dataplatform.cli", "outbox", "relay", "--database-url", url, "--table", table,
            "--product", HOUSING.name, "--topic", topic, "--instance-id", "housing-relay", *extra]


def status(url: str, table: str) -> dict[str, dict]:
    """`dataplatform outbox status --json`, by product."""
    return {p["product"]: p for p in json.loads(outbox("status", "--database-url", url, "--table", table, "--json"))["products"]}


def kafka_env(bootstrap: str, registry_url: str) -> dict[str, str]:
    return {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "SCHEMA_REGISTRY_URL": registry_url}


def outbox(*args: str) -> str:
    """`dataplatform outbox ...` in this process; its output (fails the test on a non-zero exit)."""
    result = CliRunner().invoke(app, ["outbox", *args])
    assert result.exit_code == 0, result.output
    return result.output


def unit(key: str, version: int) -> dict:
    return housing_unit(key, status=("available", "reserved", "let", "void")[version % 4], provider="Clarion",
                        bedrooms=1 + version % 4, available_from=dt.date(2026, 12, 1) + dt.timedelta(days=version),
                        updated_at=dt.datetime(2026, 11, 27, tzinfo=dt.UTC) + dt.timedelta(seconds=version))


class Service:
    """A tiny service writing business changes through the outbox, keeping per-entity versions."""

    def __init__(self, engine: Engine, table: str) -> None:
        self.engine, self.table = engine, table
        self.versions: dict[str, int] = {}

    def change(self, rng: random.Random, n: int) -> None:
        for _ in range(n):
            with Session(self.engine) as session, session.begin():
                key = f"HU-{rng.randrange(ENTITIES)}"
                version = self.versions.get(key, 0) + 1
                before = unit(key, version - 1) if version > 1 else None
                event = ChangeEvent("u" if before else "c", before, unit(key, version), "housing-service",
                                    position=version)
                record_change(session, HOUSING, event, table=self.table)
                self.versions[key] = version


def sent_count(engine: Engine, table: str) -> int:
    t = outbox_table(table)
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(t).where(t.c.sent_at.is_not(None))) or 0


@pytest.fixture
def pg_table(postgres_url: str) -> Iterator[str]:
    """An outbox table name in a fresh schema of the test PostgreSQL (the schema dropped after)."""
    schema = f"outbox_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{schema}.outbox_events"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(url, outbox table): a SQLite file, or a table in a fresh schema of the test PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'service.db'}", "outbox_events"
    return request.getfixturevalue("postgres_url"), request.getfixturevalue("pg_table")


def test_relay_survives_sigkill_without_loss_or_reordering(database: tuple[str, str], bootstrap: str,
                                                           registry_url: str, topic: str) -> None:
    url, table = database
    assert "created" in outbox("init", "--database-url", url, "--table", table)
    engine = create_engine(url)
    service = Service(engine, table)
    rng = random.Random(20261127)
    env = kafka_env(bootstrap, registry_url)
    interrupted = 0
    for _round in range(4):
        service.change(rng, 40)
        relay = subprocess.Popen(relay_command(url, table, topic, "--batch-size", "4", "--poll-interval", "0.05"),
                                 cwd=REPO, env=env)
        try:
            already = end_offset(bootstrap, topic)
            unsent = 40 * (_round + 1) - sent_count(engine, table)
            # a seeded point among the batches the relay must send, two batches of 4 before its last
            # (else the relay can finish between the offset check and the kill: nothing interrupted)
            kill_at = already + rng.randint(1, max(1, unsent - 8))
            wait_until(lambda: end_offset(bootstrap, topic) >= kill_at or relay.poll() is not None,
                       timeout=60, interval=0.01, message=f"the relay to publish past offset {kill_at}")
        finally:
            relay.send_signal(signal.SIGKILL)
            relay.wait(10)
        assert relay.returncode == -signal.SIGKILL
        interrupted += sent_count(engine, table) < 40 * (_round + 1)  # killed with work left to do
    assert interrupted >= 2, "the kills should land while the relay still has rows to send"

    # a final, undisturbed relay publishes whatever is left, says so on /metrics, and stops on SIGTERM
    left, port = 160 - sent_count(engine, table), free_port()
    relay = subprocess.Popen(relay_command(url, table, topic, "--metrics-port", str(port)), cwd=REPO, env=env,
                             stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: status(url, table)[HOUSING.name]["waiting"] == 0, timeout=60, message="the outbox to empty")
        lag = 'dataplatform_outbox_lag_seconds{relay="housing-relay"} 0.0'
        metrics = wait_until(lambda: lag in (_scrape(port) or "") and _scrape(port), timeout=30,
                             message="the relay's /metrics to show lag 0")
        assert 'dataplatform_outbox_dependency_up{part="database",relay="housing-relay"} 1.0' in metrics
        counted = re.search(re.escape(f'dataplatform_outbox_rows_published_total{{product="{HOUSING.name}",'
                                      'relay="housing-relay"} ') + r"(\S+)", metrics)
        assert (float(counted.group(1)) if counted else 0) == left  # exactly the rows the kills left
    finally:
        relay.send_signal(signal.SIGTERM)
        _, logs = relay.communicate(timeout=30)
    assert relay.returncode == 0, logs
    assert "outbox relay housing-relay: stopped after publishing" in logs
    final = status(url, table)[HOUSING.name]
    assert (final["waiting"], final["published"]) == (0, 160)
    assert sent_count(engine, table) == 160

    t = outbox_table(table)
    with engine.connect() as conn:
        rows = conn.execute(select(t).order_by(t.c.id)).all()
        committed = [(r.entity_key, r.event_id, r.payload["source"]["position"]) for r in rows]
    messages = consume(bootstrap, topic, expected=end_offset(bootstrap, topic))
    serde = ProductSerde(HOUSING, registry_client(registry_url))
    published = [serde.deserialize_value(m.value(), topic) for m in messages]
    assert len(published) >= len(committed)
    print(f"{len(published)} messages for {len(committed)} changes ({interrupted} interrupted runs)")

    # at least once: every committed change is on the topic, duplicates carry the same event id and content
    by_id: dict[str, dict] = {}
    for record in published:
        first = by_id.setdefault(record["source"]["event_id"], record)
        assert first == record
    assert {event_id for _, event_id, _ in committed} == set(by_id)

    # per-entity order: first occurrences per key come in commit order, positions strictly increasing
    expected: dict[str, list[str]] = defaultdict(list)
    for key, event_id, _ in committed:
        expected[key].append(event_id)
    seen: set[str] = set()
    got: dict[str, list[str]] = defaultdict(list)
    last_position: dict[str, int] = {}
    for message, record in zip(messages, published):
        event_id = record["source"]["event_id"]
        if event_id in seen:
            continue
        seen.add(event_id)
        key = message.key().decode()
        got[key].append(event_id)
        assert record["source"]["position"] > last_position.get(key, 0)
        last_position[key] = record["source"]["position"]
    assert got == expected
    engine.dispose()


def _scrape(port: int) -> str | None:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.TransportError:
        return None


def test_a_database_outage_is_logged_once_when_it_starts_and_once_when_it_ends(
        postgres_url: str, pg_table: str, bootstrap: str, registry_url: str, topic: str, tmp_path: Path) -> None:
    """The relay reaches PostgreSQL through a proxy the test cuts: while cut, every retry
    fails, yet the log says so once; changes committed meanwhile are published after."""
    outbox("init", "--database-url", postgres_url, "--table", pg_table)
    engine = create_engine(postgres_url)
    service = Service(engine, pg_table)
    rng = random.Random(7)
    service.change(rng, 10)
    with Session(engine) as session, session.begin():  # a product this relay leaves to another
        record_change(session, RELEASES, ChangeEvent("c", None, release_case("C-1"), "releases-service", position=1),
                      table=pg_table)

    before = status(postgres_url, pg_table)
    assert {name: (p["waiting"], p["published"], p["last_published"]) for name, p in before.items()} == {
        HOUSING.name: (10, 0, None), RELEASES.name: (1, 0, None)}
    assert before[HOUSING.name]["oldest_waiting_age_seconds"] >= 0

    database = make_url(postgres_url)
    proxy = TcpProxy(database.host or "127.0.0.1", database.port or 5432)
    proxied = database.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    port, log_path = free_port(), tmp_path / "relay.log"
    with open(log_path, "w") as log_file:
        relay = subprocess.Popen(relay_command(proxied, pg_table, topic, "--metrics-port", str(port),
                                               "--report-every", "1"),
                                 cwd=REPO, env=kafka_env(bootstrap, registry_url), stderr=log_file)
    try:
        wait_until(lambda: end_offset(bootstrap, topic) == 10, timeout=60, message="the first 10 changes")
        after = wait_until(lambda: (s := status(postgres_url, pg_table))[HOUSING.name]["waiting"] == 0 and s,
                           timeout=30, message="the first 10 rows marked sent")
        assert (after[HOUSING.name]["published"], after[RELEASES.name]["waiting"]) == (10, 1)
        assert after[HOUSING.name]["last_published"] is not None

        proxy.cut()
        service.change(rng, 10)  # committed while the relay cannot reach the database
        up = 'dataplatform_outbox_dependency_up{part="database",relay="housing-relay"}'
        wait_until(lambda: f"{up} 0.0" in (_scrape(port) or ""), timeout=30, message="the outage on /metrics")
        wait_until(lambda: proxy.refused >= 3, timeout=30, message="three failed attempts while cut")
        proxy.restore()
        wait_until(lambda: end_offset(bootstrap, topic) == 20, timeout=60, message="the changes made while down")
        wait_until(lambda: "database is back" in log_path.read_text(), timeout=30, message="the end of the outage")
        assert f"{up} 1.0" in (_scrape(port) or "")
    finally:
        relay.send_signal(signal.SIGTERM)
        relay.wait(30)
        proxy.close()
    logs = log_path.read_text()
    assert relay.returncode == 0, logs
    started = [line for line in logs.splitlines() if "database unavailable" in line]
    ended = [line for line in logs.splitlines() if "database is back after" in line]
    assert len(started) == 1 and " ERROR " in started[0], logs
    assert len(ended) == 1 and " WARNING " in ended[0], logs
    attempts = int(ended[0].rsplit(", ", 1)[1].split()[0])
    assert attempts >= 3, ended[0]
    assert sum(" ERROR " in line for line in logs.splitlines()) == 1, logs
    # the lag in the log: the first batch after the outage held rows written while it lasted
    reports = re.findall(r"housing-relay: (\d+) rows published in the last \d+ s, lag ([\d.]+) s", logs)
    assert reports and max(float(lag) for _, lag in reports) >= 1.0, logs
    assert status(postgres_url, pg_table)[HOUSING.name]["published"] == 20
    engine.dispose()
