"""Stream processor throughput and event-to-warning latency, against a bare aiokafka loop.

The processor measured is the one the housing derivation spec compiles to
(schemas/platforms/area_supply_demand/derivation.yaml, rules replaced by RULES below).

    .venv/bin/python -m bench.processor [--events N] [--rate R] [--seconds S] [--warmup W]

* throughput: N housing/release events (Avro-encoded beforehand, so the load generator
  costs next to nothing while the clock runs) are published as fast as the producer goes
  while 1 (then 2) processor workers are running; the clock stops when the derived
  ``area_supply_demand`` figures of every area equal the expected final figures (every
  event changes its area's figures, so that is when the last event went through the join).
* baseline: a bare aiokafka loop in this process consumes the same N events, decodes them
  with the same ProductSerde and produces one small JSON record per event: what any
  Kafka consume-decode-produce step costs here, without tables, repartitioning or rules.
* Faust floor (second baseline): the same consume-decode-produce step as a stateless Faust
  agent (``bench/faust_floor.py``, its own process), batched like the processor: what
  Faust itself costs per event here, before any work of ours.
* latency: with one worker running, events are paced at ``--rate`` per second for
  ``--warmup`` seconds (not counted: the broker's JIT compiler is still busy at first),
  then measured for ``--seconds`` at half that rate and at the full rate; one in 50 is a
  probe that flips a warning in Newcastle (a release appears, then is housed). The latency
  of a warning is its arrival at a consumer minus ``evidence_at`` (the ts of the probe
  event behind it).

Starts its own broker and registry unless KAFKA_BOOTSTRAP_SERVERS / SCHEMA_REGISTRY_URL
are set. Writes bench/results/processor.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from rich.console import Console
from rich.table import Table

from bench.common import machine, platform_services, write_results
from dataplatform.kafka_config import reliable_producer_config
from dataplatform.product_io.serialization import ProductSerde, registry_client
from dataplatform.topics import create_missing
from dataplatform.products.envelope import ChangeEvent
from dataplatform.products.product import get_product
from dataplatform.products.reference import local_authorities
from dataplatform.stream_processors.config import ProcessorConfig
from dataplatform.stream_processors.pool import WorkerPool, start_workers
from tests.support.entities import HOUSING, RELEASES, housing_unit, release_case

RESULTS = Path(__file__).resolve().parent / "results" / "processor.json"
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


def load_events(n: int) -> list[tuple[str, ChangeEvent]]:
    """n creates: units and releases alternately over 40 areas, each changing its area's figures."""
    areas, out = load_areas(), []
    for i in range(n):
        la, region = areas[i % len(areas)]
        if i % 2:
            entity = release_case(f"C{i}", la, region, release_date=TODAY + dt.timedelta(days=i % 20))
            out.append((RELEASES, ChangeEvent("c", None, entity, "releases-service", 1)))
        else:
            entity = housing_unit(f"U{i}", la, region, available_from=TODAY)
            out.append((HOUSING, ChangeEvent("c", None, entity, "housing-service", 1)))
    return out


def final_figures(events: list[tuple[str, ChangeEvent]]) -> dict[str, tuple[int, int]]:
    counts: dict[str, list[int]] = {}
    for product, event in events:
        e = event.after
        for area in (e["local_authority_code"], e["region_code"]):
            counts.setdefault(area, [0, 0])[0 if product == HOUSING else 1] += 1
    return {a: (s, d) for a, (s, d) in counts.items()}


class Run:
    """One processor deployment on its own topics, with a reader of its outputs."""

    def __init__(self, bootstrap: str, registry: str, tmp: Path, name: str) -> None:
        rules = tmp / "rules.yaml"
        rules.write_text(RULES)
        prefix = f"bench-{name}-{uuid.uuid4().hex[:6]}."
        self.bootstrap, self.registry = bootstrap, registry
        self.config = ProcessorConfig(app_id=prefix + "processor", bootstrap=bootstrap, registry_url=registry,
                                      topic_prefix=prefix, rules_path=str(rules), datadir=str(tmp / prefix),
                                      tick_seconds=3600, loglevel="INFO")
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

    def start(self, workers: int) -> None:
        self.pool = start_workers(workers, config=self.config)
        self.config = self.pool.config
        threading.Thread(target=self._read, daemon=True).start()
        # ready: every worker settled in the same generation, and a warm-up event went through
        wait(lambda: settled(self.pool), 120, "workers ready")
        self.publish(HOUSING, ChangeEvent("c", None, housing_unit("warm-up", *load_areas()[0], available_from=TODAY),
                                          "housing-service", 1))
        self.producer.flush(30)
        wait(lambda: load_areas()[0][0] in self.figures, 120, "warm-up processed")

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


def wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"benchmark: timed out waiting for {what}")
        time.sleep(0.02)


def throughput(bootstrap: str, registry: str, tmp: Path, workers: int, events: list) -> tuple[float, Run]:
    run = Run(bootstrap, registry, tmp, f"w{workers}")
    run.start(workers)
    expected = final_figures(events)
    expected[load_areas()[0][0]] = (expected[load_areas()[0][0]][0] + 1, expected[load_areas()[0][0]][1])
    expected[load_areas()[0][1]] = (expected[load_areas()[0][1]][0] + 1, expected[load_areas()[0][1]][1])
    # encoded first, so the clock measures the processor, not this process's Avro encoding
    messages = [run.encode(product, event) for product, event in events]
    started = time.perf_counter()
    for message in messages:
        run.send(*message)
    run.producer.flush(60)
    wait(lambda: all(run.figures.get(a) == f for a, f in expected.items()), 300, f"{workers}-worker run")
    return len(events) / (time.perf_counter() - started), run


def step_output(record: dict) -> bytes:
    """What the baselines produce per decoded event (the bare loop and the Faust floor alike)."""
    return json.dumps({"area": record["after"]["local_authority_code"], "op": record["op"]}).encode()


def baseline(bootstrap: str, registry: str, run: Run, n: int, passes: int = 3) -> float:
    """Bare aiokafka: consume the run's input topics, decode, produce one JSON per event.

    The median of ``passes`` passes, each with its own consumer group: one pass drains the
    topics in about a second, short enough for a neighbour's burst on a shared host to
    move it by half.
    """
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    topics = {run.config.topic(p): p for p in (HOUSING, RELEASES)}
    out_topic = run.config.topic_prefix + "baseline-out"
    create_missing(AdminClient({"bootstrap.servers": bootstrap}), [NewTopic(out_topic, run.config.partitions)])

    async def loop() -> float:
        consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, group_id=f"bench-base-{uuid.uuid4().hex}",
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await consumer.start()
        await producer.start()
        seen, started = 0, None
        try:
            while seen < n:
                batches = await consumer.getmany(timeout_ms=500, max_records=2000)
                for tp, records in batches.items():
                    for r in records:
                        started = started or time.perf_counter()
                        record = run.serdes[topics[tp.topic]].deserialize_value(r.value, tp.topic)
                        await producer.send(out_topic, step_output(record), key=r.key)
                        seen += 1
            await producer.flush()
            await consumer.commit()
            return seen / (time.perf_counter() - started)
        finally:
            await consumer.stop()
            await producer.stop()

    return statistics.median([asyncio.run(loop()) for _ in range(passes)])


def faust_floor(bootstrap: str, registry: str, run: Run, n: int, tmp: Path) -> float:
    """A stateless Faust agent doing the baseline's work on the same topics (events/s)."""
    out = tmp / f"faust-floor-{uuid.uuid4().hex[:6]}.json"
    topics = [f"{run.config.topic(p)}={p}" for p in (HOUSING, RELEASES)]
    subprocess.run([sys.executable, "-m", "bench.faust_floor", "--bootstrap", bootstrap, "--registry", registry,
                    "--events", str(n), "--out", str(out), *topics], check=True, timeout=600,
                   stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())["events_per_s"]


def latency(run: Run, rate: float, seconds: float) -> list[float]:
    """Paced events; one in 50 a probe that flips Newcastle's warning. Latencies in ms.

    Every call uses new entities (its own probe case and units), and ends with the probe
    housed, so calls can follow each other on one deployment.
    """
    areas, probes, tag = load_areas(), 0, uuid.uuid4().hex[:6]
    interval, start = 1.0 / rate, time.perf_counter()
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
        if i % 50 == 0:
            probe()
        else:
            la, region = areas[i % len(areas)]
            run.publish(HOUSING, ChangeEvent("c", None, housing_unit(f"L{tag}-{i}", la, region, available_from=TODAY),
                                             "housing-service", 1))
    if probes % 2:
        probe()   # housed again: Newcastle ends without a warning
    run.producer.flush(60)
    expected = 2 * probes   # the local authority and its region flip each time
    wait(lambda: len(run.warnings) - before >= expected, 120, "probe warnings")
    out = []
    for received, w in run.warnings[before:]:
        evidence = w["evidence_at"]
        evidence_s = evidence.timestamp() if isinstance(evidence, dt.datetime) else evidence / 1000
        out.append((received - evidence_s) * 1000)
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000, help="events per throughput run")
    parser.add_argument("--rate", type=float, default=1000.0, help="paced events/s for latency")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each measured paced phase")
    parser.add_argument("--warmup", type=float, default=15.0,
                        help="seconds of paced load before the latency is measured (not counted)")
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory(prefix="bench-processor-") as tmp_name, \
            platform_services(Path(tmp_name)) as (bootstrap, registry):
        tmp = Path(tmp_name)
        events = load_events(args.events)
        one, run1 = throughput(bootstrap, registry, tmp, 1, events)
        console.print(f"1 worker: {one:,.0f} events/s")
        try:
            base = baseline(bootstrap, registry, run1, args.events + 1)
            floor = faust_floor(bootstrap, registry, run1, args.events + 1, tmp)
            latency(run1, args.rate, args.warmup)   # warm-up: the broker's JIT, the worker's caches
            half = latency(run1, args.rate / 2, args.seconds)
            lat = latency(run1, args.rate, args.seconds)
        finally:
            run1.stop()
        two, run2 = throughput(bootstrap, registry, tmp, 2, events)
        run2.stop()
    result = {
        "events": args.events, "events_per_s": round(one, 1), "events_per_s_two_workers": round(two, 1),
        "baseline_events_per_s": round(base, 1), "ratio_vs_baseline": round(one / base, 3),
        "ratio_two_workers_vs_baseline": round(two / base, 3),
        "faust_floor_events_per_s": round(floor, 1), "ratio_vs_faust_floor": round(one / floor, 3),
        "latency_rate_per_s": args.rate, "latency_samples": len(lat),
        "latency_ms_p50": round(pct(lat, 0.50), 1), "latency_ms_p95": round(pct(lat, 0.95), 1),
        "latency_ms_p99": round(pct(lat, 0.99), 1),
        "latency_half_rate_ms_p50": round(pct(half, 0.50), 1), "latency_half_rate_ms_p99": round(pct(half, 0.99), 1),
        "machine": machine(),
    }
    table = Table(title="Stream processor (supply/demand join + rules)")
    for col in ("measure", "value"):
        table.add_column(col)
    for label, key in [("processor, 1 worker (events/s)", "events_per_s"),
                       ("processor, 2 workers (events/s)", "events_per_s_two_workers"),
                       ("baseline aiokafka consume-decode-produce (events/s)", "baseline_events_per_s"),
                       ("Faust floor: stateless agent, same step (events/s)", "faust_floor_events_per_s"),
                       ("ratio 1 worker / baseline", "ratio_vs_baseline"),
                       ("ratio 1 worker / Faust floor", "ratio_vs_faust_floor"),
                       ("ratio 2 workers / baseline", "ratio_two_workers_vs_baseline"),
                       (f"event-to-warning p50 ms at {args.rate:.0f}/s", "latency_ms_p50"),
                       ("event-to-warning p95 ms", "latency_ms_p95"), ("event-to-warning p99 ms", "latency_ms_p99"),
                       (f"event-to-warning p50 ms at {args.rate / 2:.0f}/s", "latency_half_rate_ms_p50"),
                       (f"event-to-warning p99 ms at {args.rate / 2:.0f}/s", "latency_half_rate_ms_p99")]:
        table.add_row(label, f"{result[key]:,}")
    console.print(table)
    write_results(RESULTS, result, console)


if __name__ == "__main__":
    main()
