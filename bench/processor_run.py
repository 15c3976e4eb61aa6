"""One processor deployment under load, for the processor benchmark: its events, its
workers, a reader of its outputs, and the two measures taken on it (throughput, latency).

The processor measured is the one the housing derivation spec compiles to
(schemas/platforms/area_supply_demand/derivation.yaml, rules replaced by RULES below).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, Producer

from dataplatform.kafka_config import reliable_producer_config
from dataplatform.product_io.serialization import ProductSerde, registry_client
from dataplatform.products.envelope import ChangeEvent
from dataplatform.products.product import get_product
from dataplatform.products.reference import local_authorities
from dataplatform.stream_processors.config import ProcessorConfig
from dataplatform.stream_processors.deployment.pool import WorkerPool, start_workers
from tests.support.entities import HOUSING, RELEASES, housing_unit, release_case
from tests.support.waiting import wait_until

RULES = """
horizon_days: 28
rules:
  - {id: shortfall, applies_to: [local_authority, region], have: supply, need: demand, min_need: 1, clear_after: 1}
"""
PROBE_LA, PROBE_REGION = "E08000021", "E12000001"   # Newcastle, North East: only probes go there
TODAY = dt.datetime.now(dt.timezone.utc).date()


def load_areas() -> list[tuple[str, str]]:
    """Local authorities outside the probe region: where the load goes."""
    return [(a.local_authority_code, a.region_code) for a in local_authorities().values()
            if a.region_code != PROBE_REGION][:40]


def create_events(n: int, areas: list[tuple[str, str]], today: dt.date) -> Iterator[tuple[str, dict]]:
    """n creates, generated as they are needed: homes and release cases alternately over
    ``areas``, each changing its area's figures."""
    for i in range(n):
        la, region = areas[i % len(areas)]
        if i % 2:
            yield RELEASES, release_case(f"C{i}", la, region, release_date=today + dt.timedelta(days=i % 20))
        else:
            yield HOUSING, housing_unit(f"U{i}", la, region, available_from=today)


def load_events(n: int) -> list[tuple[str, ChangeEvent]]:
    """The benchmark's load: n creates over 40 areas, as their services publish them."""
    source = {RELEASES: "releases-service", HOUSING: "housing-service"}
    return [(product, ChangeEvent("c", None, entity, source[product], 1))
            for product, entity in create_events(n, load_areas(), TODAY)]


def final_figures(events: list[tuple[str, ChangeEvent]]) -> dict[str, tuple[int, int]]:
    counts: dict[str, list[int]] = {}
    for product, event in events:
        e = event.after
        for area in (e["local_authority_code"], e["region_code"]):
            counts.setdefault(area, [0, 0])[0 if product == HOUSING else 1] += 1
    return {a: (s, d) for a, (s, d) in counts.items()}


def bench_config(bootstrap: str, registry: str, tmp: Path, name: str, **settings: object) -> ProcessorConfig:
    """A processor deployment of its own: topics and app id under a new prefix, RULES as its
    rules, no horizon tick while measuring."""
    rules = tmp / "rules.yaml"
    rules.write_text(RULES)
    prefix = f"bench-{name}-{uuid.uuid4().hex[:6]}."
    return ProcessorConfig(app_id=prefix + "processor", bootstrap=bootstrap, registry_url=registry,
                           topic_prefix=prefix, rules_path=str(rules), datadir=str(tmp / prefix),
                           tick_seconds=3600, loglevel="INFO", **settings)


class Run:
    """One processor deployment on its own topics, with a reader of its outputs."""

    def __init__(self, bootstrap: str, registry: str, tmp: Path, name: str) -> None:
        self.bootstrap, self.registry = bootstrap, registry
        self.config = bench_config(bootstrap, registry, tmp, name)
        client = registry_client(registry)
        self.serdes = {p: ProductSerde(get_product(p), client) for p in (HOUSING, RELEASES)}
        self.out = {p: ProductSerde(get_product(p), client)
                    for p in ("area_supply_demand", "housing_shortfall_warnings")}
        self.topics = {p: self.config.topic(p) for p in (HOUSING, RELEASES)}
        self.producer = Producer({**reliable_producer_config(bootstrap), "linger.ms": 10})
        self.figures: dict[str, tuple[int, int]] = {}
        self.warnings: list[tuple[float, dict]] = []
        self.produced_at: list[float] = []   # the warnings' Kafka timestamps (when the processor sent them)
        self._stop = threading.Event()
        self.pool: WorkerPool | None = None

    def start(self, workers: int, executable: str | None = None) -> None:
        self.pool = start_workers(workers, config=self.config, executable=executable)
        self.config = self.pool.config
        threading.Thread(target=self._read, daemon=True).start()
        # ready: every worker settled in the same generation, and a warm-up event went through
        wait_until(lambda: settled(self.pool), 120, 0.02, "workers ready")
        self.publish(HOUSING, ChangeEvent("c", None, housing_unit("warm-up", *load_areas()[0], available_from=TODAY),
                                          "housing-service", 1))
        self.producer.flush(30)
        wait_until(lambda: load_areas()[0][0] in self.figures, 120, 0.02, "warm-up processed")

    def encode(self, product: str, event: ChangeEvent) -> tuple[str, bytes, bytes]:
        """(topic, key, value) of an event, as its service would publish it."""
        topic = self.topics[product]
        key = event.entity["unit_id" if product == HOUSING else "case_id"]
        return topic, key.encode(), self.serdes[product].serialize_value(event.to_record(), topic)

    def publish(self, product: str, event: ChangeEvent) -> None:
        self.send(*self.encode(product, event))

    def send(self, topic: str, key: bytes, value: bytes) -> None:
        self.producer.produce(topic, key=key, value=value)
        self.producer.poll(0)

    def _read(self) -> None:
        derived, warnings = self.config.topic("area_supply_demand"), self.config.topic("housing_shortfall_warnings")
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": f"bench-reader-{uuid.uuid4().hex}",
                      "auto.offset.reset": "earliest", "enable.auto.commit": False})
        c.subscribe([derived, warnings])
        while not self._stop.is_set():
            for msg in c.consume(500, 0.01):
                if msg.error():
                    continue
                now = time.time()
                if msg.topic() == derived:
                    after = self.out["area_supply_demand"].deserialize_value(msg.value(), derived)["after"]
                    self.figures[after["area_code"]] = (after["supply"], after["demand"])
                else:
                    after = self.out["housing_shortfall_warnings"].deserialize_value(msg.value(), warnings)["after"]
                    self.warnings.append((now, after))
                    self.produced_at.append(msg.timestamp()[1] / 1000)
        c.close()

    def stop(self) -> None:
        self._stop.set()
        if self.pool:
            self.pool.stop()


def settled(pool: WorkerPool) -> bool:
    texts = [p.read_text() if p.exists() else "" for p in pool.logs]
    generations = [re.findall(r"\(generation (\d+)\)", t) for t in texts]
    if not all(generations) or len({g[-1] for g in generations}) != 1:
        return False
    return all("Worker ready" in t[t.rfind("(generation"):] for t in texts)


@dataclass
class Throughput:
    """One throughput pass: events/s, and the CPU each part used meanwhile (in cores)."""

    events_per_s: float
    cores: dict[str, float]


def throughput(bootstrap: str, registry: str, tmp: Path, workers: int, events: list,
               executable: str | None = None, broker_pid: int | None = None) -> tuple[Throughput, Run]:
    """N events published as fast as the producer goes; the clock stops when every area's
    figures are the expected final ones. ``executable``: the Python the workers run with."""
    run = Run(bootstrap, registry, tmp, f"w{workers}")
    run.start(workers, executable)
    expected = final_figures(events)
    expected[load_areas()[0][0]] = (expected[load_areas()[0][0]][0] + 1, expected[load_areas()[0][0]][1])
    expected[load_areas()[0][1]] = (expected[load_areas()[0][1]][0] + 1, expected[load_areas()[0][1]][1])
    # encoded first, so the clock measures the processor, not this process's Avro encoding
    messages = [run.encode(product, event) for product, event in events]
    parts = {f"worker {i + 1}": p.pid for i, p in enumerate(run.pool.processes)}
    parts["load generator and reader"] = os.getpid()
    if broker_pid:
        parts["broker"] = broker_pid
    cpu_before = {name: cpu_seconds(pid) for name, pid in parts.items()}
    started = time.perf_counter()
    for message in messages:
        run.send(*message)
    run.producer.flush(60)
    wait_until(lambda: all(run.figures.get(a) == f for a, f in expected.items()), 300, 0.02, f"{workers}-worker run")
    elapsed = time.perf_counter() - started
    cores = {name: round((cpu_seconds(pid) - cpu_before[name]) / elapsed, 2) for name, pid in parts.items()}
    return Throughput(len(events) / elapsed, cores), run


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) process ``pid`` has used so far, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


PROBE_EVERY_S = 0.5   # at least five batch windows (batch_seconds 0.1) between two flips


def latency(run: Run, rate: float, seconds: float) -> list[float]:
    """Paced events; one in 50, but no more than one per PROBE_EVERY_S, a probe that flips
    Newcastle's warning. Latencies in ms.

    The processor judges a group's rules once per batch, on the figures the batch ends
    with: two flips within one batch cancel out and raise nothing, so probes closer
    together than a batch window would wait for warnings that never come.

    Every call uses new entities (its own probe case and units), and ends with the probe
    housed, so calls can follow each other on one deployment.
    """
    areas, probes, tag = load_areas(), 0, uuid.uuid4().hex[:6]
    interval, start, every = 1.0 / rate, time.perf_counter(), max(50, int(rate * PROBE_EVERY_S))
    before = len(run.warnings)
    total = int(rate * seconds)

    def probe() -> None:
        nonlocal probes
        probes += 1
        case = release_case(f"probe-{tag}", PROBE_LA, PROBE_REGION, release_date=TODAY,
                            status="scheduled" if probes % 2 else "housed")
        run.publish(RELEASES, ChangeEvent("c" if probes == 1 else "u", None if probes == 1 else case, case,
                                          "releases-service", probes))

    for i in range(total):
        target = start + i * interval
        while time.perf_counter() < target:
            time.sleep(min(0.001, max(0.0, target - time.perf_counter())))
        if i % every == 0:
            probe()
        else:
            la, region = areas[i % len(areas)]
            run.publish(HOUSING, ChangeEvent("c", None, housing_unit(f"L{tag}-{i}", la, region, available_from=TODAY),
                                             "housing-service", 1))
    if probes % 2:
        probe()   # housed again: Newcastle ends without a warning
    run.producer.flush(60)
    expected = 2 * probes   # the local authority and its region flip each time

    def probe_warnings() -> list[tuple[float, dict]]:   # a load area may flip too: not counted
        return [(at, w) for at, w in run.warnings[before:] if w["area_code"] in (PROBE_LA, PROBE_REGION)]

    wait_until(lambda: len(probe_warnings()) >= expected, 120, 0.02, "probe warnings")
    out = []
    for received, w in probe_warnings():
        evidence = w["evidence_at"]
        evidence_s = evidence.timestamp() if isinstance(evidence, dt.datetime) else evidence / 1000
        out.append((received - evidence_s) * 1000)
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


