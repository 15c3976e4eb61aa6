"""The parts of the broker-fault test's pipeline beyond the processor and the SQL sink, as
``make run`` starts them: the Parquet sink, the web service's followers (warnings and
area figures into their stores), and a service's outbox relay; with what each must hold
at the end, and how each says it waits for brokers.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from pathlib import Path

import fsspec
import pyarrow.parquet as pq
from confluent_kafka import Consumer, TopicPartition
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from dataplatform.heartbeat import HeartbeatBoard
from dataplatform.kafka_config import client_config
from dataplatform.metrics import PlatformCollector
from dataplatform.producers.outbox import outbox_table, record_change
from dataplatform.producers.outbox_relay import OutboxRelay
from dataplatform.producers.publisher import Publisher
from dataplatform.products.envelope import ChangeEvent
from dataplatform.products.product import DataProduct, get_product
from dataplatform.sinks.parquet_files import product_dir
from dataplatform.warnings.figures import AreaFigures, FiguresStore
from dataplatform.warnings.follower import FiguresFollower, WarningFollower
from dataplatform.warnings.store import WarningStore, WarningTransition
from tests.support.entities import HOUSING, housing_unit
from tests.support.product_topics import TopicReader

RELAY_EVERY_S = 0.2   # a service committing a change to its outbox this often


class OutboxService(threading.Thread):
    """A service writing a change into its outbox table every :data:`RELAY_EVERY_S` (new
    ``let`` units: they count in no figure) while its relay publishes them; both run
    until told to finish, the relay until every row is sent."""

    def __init__(self, database_url: str, topic: str, settings, delivery_timeout_ms: int) -> None:  # noqa: ANN001
        super().__init__(daemon=True)
        self.engine = create_engine(database_url)
        self.product = get_product(HOUSING)
        self.relay = OutboxRelay(self.engine, name="faults-relay", publisher_factory=lambda p: Publisher(
            p, source_system="housing-service", settings=settings, topic=topic,
            producer_config={"delivery.timeout.ms": delivery_timeout_ms, "request.timeout.ms": 4000}))
        self.finish, self.relay_stop = threading.Event(), threading.Event()
        self.relay_thread = threading.Thread(target=self.relay.run_forever, args=(self.relay_stop, 0.1), daemon=True)
        self.written = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        self.relay_thread.start()
        try:
            while not self.finish.wait(RELAY_EVERY_S):
                with Session(self.engine) as session, session.begin():
                    record_change(session, self.product, ChangeEvent(
                        "c", None, housing_unit(f"OUTBOX-{self.written}", "E08000003", "E12000002", status="let"),
                        "housing-service", position=1))
                self.written += 1
        except BaseException as exc:  # noqa: BLE001 - re-raised by the test
            self.error = exc

    def unsent(self) -> int:
        return self.relay.pending()

    def stop(self) -> None:
        self.finish.set()
        self.relay_stop.set()
        self.relay_thread.join(30)
        self.relay.close()
        self.engine.dispose()

    def event_ids(self) -> set[str]:
        table = outbox_table()
        with self.engine.connect() as db:
            return {row.event_id for row in db.execute(select(table.c.event_id))}


class Followers:
    """The web service's followers of the warnings and the area figures, into their store."""

    def __init__(self, database_url: str, warnings_topic: str, figures_topic: str, bootstrap: str,
                 registry_url: str, settings) -> None:  # noqa: ANN001
        self.engine = create_engine(database_url)
        self.warnings_topic = warnings_topic
        kw = dict(bootstrap=bootstrap, registry_url=registry_url, settings=settings)
        self.warnings = WarningFollower(WarningStore(engine=self.engine), topic=warnings_topic, **kw)
        self.figures = FiguresFollower(FiguresStore(self.engine), topic=figures_topic, **kw)

    def start(self) -> "Followers":
        self.warnings.start()
        self.figures.start()
        return self

    def rows(self) -> int:
        with Session(self.engine) as session:
            return sum(session.query(t).count() for t in (WarningTransition, AreaFigures))

    def stored_warnings(self) -> dict[str, list[tuple[str, dict]]]:
        """Per warning, the (event id, record) of each transition stored, in offset order."""
        out: dict[str, list[tuple[str, dict]]] = {}
        with Session(self.engine) as session:
            for row in session.scalars(select(WarningTransition).order_by(
                    WarningTransition.kafka_partition, WarningTransition.kafka_offset)):
                out.setdefault(row.warning_id, []).append((row.event_id, row.record))
        return out

    def stop(self) -> None:
        self.warnings.stop()
        self.figures.stop()
        self.engine.dispose()


def follower_holds_each_transition_once(stored: dict[str, list[tuple[str, dict]]], produced: dict) -> str | None:
    """Why the store is not the warnings topic's chains (each event once, in order, with the
    topic's content), or None when it is."""
    for key, events in produced["warnings"].items():
        want = [e["source"]["event_id"] for e in events]
        got = [event_id for event_id, _ in stored.get(events[-1]["after"]["warning_id"], [])]
        if got != want:
            return f"warning {key}: stored {len(got)} transitions, the topic has {len(want)}"
        for (event_id, record), event in zip(stored[events[-1]["after"]["warning_id"]], events):
            if (record["severity"], record["transition"]) != (event["after"]["severity"], event["after"]["transition"]):
                return f"warning {key}: event {event_id} stored with another content"
    extra = set(stored) - {events[-1]["after"]["warning_id"] for events in produced["warnings"].values()}
    return f"warnings stored that the topic does not have: {sorted(extra)[:3]}" if extra else None


def group_at_end(bootstrap: str, group: str, topics: list[str], partitions: int) -> bool:
    """Whether ``group``'s committed offsets are at every partition's end offset."""
    probe = Consumer({**client_config(bootstrap), "group.id": group})
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(partitions)]
        ends = [probe.get_watermark_offsets(tp, timeout=10)[1] for tp in tps]
        committed = probe.committed(tps, timeout=10)
    finally:
        probe.close()
    return all(end == 0 or c.offset == end for c, end in zip(committed, ends))


def check_parquet_holds_each_event_once(path: Path, topics: dict[str, DataProduct], bootstrap: str,
                                        registry_url: str) -> int:
    """The Parquet sink's guarantee (docs/sinks.md): every offset of every partition in
    exactly one file, each event once (an exact repeat, same event id, is skipped within a
    run), tombstones as rows. So its rows are exactly the topics' first occurrences of each
    event id and their tombstones. Returns the number of rows."""
    expected: set[tuple[str, int, int, str | None]] = set()
    seen: set[tuple[str, str]] = set()
    with TopicReader(bootstrap, registry_url, topics) as reader:
        for r in reader.read_to_end(120):
            if r.value is None:
                expected.add((r.topic, r.partition, r.offset, None))
            elif (r.topic, r.event_id) not in seen:
                seen.add((r.topic, r.event_id))
                expected.add((r.topic, r.partition, r.offset, r.event_id))
    fs, root = fsspec.core.url_to_fs(str(path))
    rows: list[tuple[str, int, int, str | None]] = []
    for topic, product in topics.items():
        for file in fs.glob(f"{product_dir(root, product.name)}/date=*/part-*.parquet"):
            t = pq.read_table(file, columns=["_kafka_partition", "_kafka_offset", "_event_id"]).to_pydict()
            rows += [(topic, p, o, e) for p, o, e in zip(t["_kafka_partition"], t["_kafka_offset"], t["_event_id"])]
    twice = [row for row, n in Counter(rows).items() if n > 1]
    assert not twice, f"{len(twice)} Parquet rows written twice, e.g. {twice[:3]}"
    ids = Counter((topic, e) for topic, _, _, e in rows if e is not None)
    assert not [k for k, n in ids.items() if n > 1], "an event id in two Parquet rows"
    missing, extra = expected - set(rows), set(rows) - expected
    assert not missing and not extra, (f"Parquet rows missing: {len(missing)} (e.g. {sorted(missing)[:3]}), "
                                       f"not in the topics: {len(extra)}")
    return len(rows)


def parquet_latest(path: Path, product: DataProduct, key: str, columns: list[str]) -> dict[str, tuple]:
    """Each key's last row (by offset) in the product's Parquet files: its current state."""
    fs, root = fsspec.core.url_to_fs(str(path))
    latest: dict[str, tuple[int, tuple]] = {}
    for file in fs.glob(f"{product_dir(root, product.name)}/date=*/part-*.parquet"):
        t = pq.read_table(file, columns=[key, "_kafka_offset", *columns]).to_pydict()
        for i, k in enumerate(t[key]):
            if k not in latest or t["_kafka_offset"][i] > latest[k][0]:
                latest[k] = (t["_kafka_offset"][i], tuple(t[c][i] for c in columns))
    return {k: row for k, (_, row) in latest.items()}


def metric(name: str, labels: dict[str, str], registry: CollectorRegistry = REGISTRY) -> float | None:
    return registry.get_sample_value(name, labels)


def heartbeat_ages(board: HeartbeatBoard) -> dict[str, float]:
    """``dataplatform_processor_heartbeat_age_seconds`` per worker, as ``/metrics`` serves it."""
    registry = CollectorRegistry()
    registry.register(PlatformCollector(sampler=lambda: None, current_warnings=list, heartbeats=lambda: board))
    ages: dict[str, float] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            if s.name == "dataplatform_processor_heartbeat_age_seconds":
                ages[s.labels["component"]] = max(ages.get(s.labels["component"], 0), s.value)
    return ages


def said(records: list[logging.LogRecord], who: str, what: str) -> list[str]:
    """Log lines of ``who`` (an outage's component) containing ``what``."""
    return [r.getMessage() for r in records if r.getMessage().startswith(f"{who}: ") and what in r.getMessage()]
