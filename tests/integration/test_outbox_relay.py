"""The outbox relay, killed with SIGKILL at seeded random points and restarted, publishes
every committed change at least once and in per-entity order (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import sys
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.orm import Session

from dataplatform.config import Settings
from dataplatform.product_io.serialization import ProductSerde, registry_client
from dataplatform.producers.outbox import OutboxEvent, OutboxRelay, create_outbox_table, record_change
from dataplatform.producers.publisher import Publisher
from dataplatform.products.envelope import ChangeEvent
from dataplatform.products.product import get_product
from tests.support.entities import housing_unit
from tests.support.kafka import consume, end_offset
from tests.support.waiting import wait_until

HOUSING = get_product("social_housing_availability")
REPO = Path(__file__).resolve().parents[2]
ENTITIES = 5

CHILD = """
import sys, threading, signal
from sqlalchemy import create_engine
from dataplatform.config import Settings
from dataplatform.producers.outbox import OutboxRelay
from dataplatform.producers.publisher import Publisher
url, schema, topic = sys.argv[1], sys.argv[2], sys.argv[3]
args = {"options": f"-csearch_path={schema}"} if schema else {}
engine = create_engine(url, connect_args=args)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
relay = OutboxRelay(engine, batch_size=4, publisher_factory=lambda p: Publisher(
    p, source_system="housing-service", settings=Settings(), topic=topic))
relay.run_forever(stop, poll_interval=0.05)
relay.close()
"""


def unit(key: str, version: int) -> dict:
    return housing_unit(key, status=("available", "reserved", "let", "void")[version % 4], provider="Clarion",
                        bedrooms=1 + version % 4, available_from=dt.date(2026, 12, 1) + dt.timedelta(days=version),
                        updated_at=dt.datetime(2026, 11, 27, tzinfo=dt.UTC) + dt.timedelta(seconds=version))


class Service:
    """A tiny service writing business changes through the outbox, keeping per-entity versions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.versions: dict[str, int] = {}

    def change(self, rng: random.Random, n: int) -> None:
        for _ in range(n):
            with Session(self.engine) as session, session.begin():
                key = f"HU-{rng.randrange(ENTITIES)}"
                version = self.versions.get(key, 0) + 1
                before = unit(key, version - 1) if version > 1 else None
                event = ChangeEvent("u" if before else "c", before, unit(key, version), "housing-service",
                                    position=version)
                record_change(session, HOUSING, event)
                self.versions[key] = version


def sent_count(engine: Engine) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(OutboxEvent).where(OutboxEvent.sent_at.is_not(None))) or 0


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(url, schema): a SQLite file, or a fresh schema in the test PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'service.db'}", ""
        return
    url = request.getfixturevalue("postgres_url")
    schema = f"outbox_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield url, schema
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def engine_for(url: str, schema: str) -> Engine:
    return create_engine(url, connect_args={"options": f"-csearch_path={schema}"} if schema else {})


def test_relay_survives_sigkill_without_loss_or_reordering(database: tuple[str, str], bootstrap: str,
                                                           registry_url: str, topic: str) -> None:
    url, schema = database
    engine = engine_for(url, schema)
    create_outbox_table(engine)
    service = Service(engine)
    rng = random.Random(20261127)
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "SCHEMA_REGISTRY_URL": registry_url}
    interrupted = 0
    for _round in range(4):
        service.change(rng, 40)
        relay = subprocess.Popen([sys.executable, "-c", CHILD, url, schema, topic], cwd=REPO, env=env)
        try:
            already = end_offset(bootstrap, topic)
            unsent = 40 * (_round + 1) - sent_count(engine)
            # a seeded point among the batches the relay must send, two batches of 4 before its last
            # (else the relay can finish between the offset check and the kill: nothing interrupted)
            kill_at = already + rng.randint(1, max(1, unsent - 8))
            wait_until(lambda: end_offset(bootstrap, topic) >= kill_at or relay.poll() is not None,
                       timeout=60, interval=0.01, message=f"the relay to publish past offset {kill_at}")
        finally:
            relay.send_signal(signal.SIGKILL)
            relay.wait(10)
        assert relay.returncode == -signal.SIGKILL
        interrupted += sent_count(engine) < 40 * (_round + 1)  # killed with work left to do
    assert interrupted >= 2, "the kills should land while the relay still has rows to send"

    # a final, undisturbed relay run publishes whatever is left
    with OutboxRelay(engine, batch_size=50, publisher_factory=lambda p: Publisher(
            p, source_system="housing-service", settings=Settings(), topic=topic,
            bootstrap=bootstrap, registry_url=registry_url)) as final:
        final.drain()
        assert final.pending() == 0
    assert sent_count(engine) == 160

    with Session(engine) as session:
        rows = session.scalars(select(OutboxEvent).order_by(OutboxEvent.id)).all()
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
