"""Parts of the broker-fault test's pipeline as ``make run`` starts them (the web service's
followers of the warnings and the area figures, a service writing its outbox with its
relay), and how each component must say, during an outage, that it waits for brokers:
a log line when it starts and when it ends, and a value on ``/metrics``.
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from dataplatform.heartbeat import HeartbeatBoard
from dataplatform.web.scrape_metrics import PlatformCollector
from dataplatform.producers.outbox import outbox_table, record_change
from dataplatform.producers.outbox_relay import OutboxRelay
from dataplatform.producers.publisher import Publisher
from dataplatform.products.envelope import ChangeEvent
from dataplatform.products.product import get_product
from dataplatform.warnings.figures import AreaFigures, FiguresStore
from dataplatform.warnings.follower import FiguresFollower, WarningFollower
from dataplatform.warnings.store import WarningStore, WarningTransition
from tests.support.entities import HOUSING, housing_unit
from tests.support.waiting import wait_until

RELAY_EVERY_S = 0.2   # a service committing a change to its outbox this often
RELAY_BROKER_UP = "dataplatform_outbox_dependency_up"


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


def outage_said(workers: int, cut_off: list[str], service: OutboxService, board: HeartbeatBoard,
                records: list[logging.LogRecord], heartbeat_s: float) -> None:
    """While two of three nodes are down, each component says it waits for the brokers: a log
    line naming the outage and a value on ``/metrics``."""
    gauge = lambda who: metric("dataplatform_kafka_up", {"component": who})  # noqa: E731
    wait_until(lambda: all(gauge(who) == 0 for who in cut_off), timeout=30,
               message=f"dataplatform_kafka_up at 0 for {cut_off}")
    for who in cut_off:
        assert said(records, who, "Kafka unavailable: KafkaUnreachable: cannot reach"), f"{who} did not say it waits"
    wait_until(lambda: metric(RELAY_BROKER_UP, {"relay": "faults-relay", "part": "broker"}) == 0, timeout=30,
               message="the relay's broker gauge at 0")
    assert said(records, "outbox relay faults-relay", "broker unavailable: DeliveryError")
    assert service.unsent() > 0, "the relay holds no row while nothing can be acknowledged"
    wait_until(lambda: (ages := heartbeat_ages(board)) and min(ages.values()) > 5 * heartbeat_s, timeout=30,
               message="the processor's heartbeat ages on /metrics growing")
    assert len(heartbeat_ages(board)) == workers


def back_said(cut_off: list[str], board: HeartbeatBoard, records: list[logging.LogRecord],
              heartbeat_s: float) -> None:
    """Once the nodes are back, each component says so by itself: no restart."""
    wait_until(lambda: all(metric("dataplatform_kafka_up", {"component": who}) == 1 for who in cut_off)
               and metric(RELAY_BROKER_UP, {"relay": "faults-relay", "part": "broker"}) == 1
               and max(heartbeat_ages(board).values()) < 5 * heartbeat_s, timeout=60,
               message="every component reaching Kafka again")
    for who in [*cut_off, "outbox relay faults-relay"]:
        assert said(records, who, "is back after"), f"{who} did not say the outage ended"


def logged_since(paths: list[Path], sizes: list[int]) -> list[str]:
    """What each log file got after it was ``sizes`` bytes long."""
    texts = []
    for path, size in zip(paths, sizes):
        with open(path, "rb") as log_file:
            log_file.seek(size)
            texts.append(log_file.read().decode(errors="replace"))
    return texts


GUARDS = ("a record was dropped before processing",      # engine/continuity.py
          "the group coordinator no longer knows this worker")   # engine/faust_patches/recovery.py


def unguarded(restarts: list[str]) -> list[str]:
    """The worker restarts that were not a guard's doing.

    Two guards stop a worker on purpose (exit 70) before it processes or commits anything,
    and the pool starts it again from the committed offsets, which loses nothing: the
    continuity guard, when a rebalance that met a coordinator's loss started a stream past
    its committed offset (aiokafka 0.14 under faust-streaming 0.15; cause not pinned down),
    and the membership check, when a worker's recovery outlasted its session and the group
    went on without it (see docs/operations.md, "Running on a cluster"). Any other restart
    (a crash, a stall) is a defect."""
    others = []
    for said_ in restarts:
        log_path = re.search(r"exited with code 70; .*\(log: (.+?)\)$", said_.splitlines()[0])
        text = Path(log_path.group(1)).read_text(errors="replace") if log_path else ""
        if not any(guard in text for guard in GUARDS):
            others.append(said_)
    return others
