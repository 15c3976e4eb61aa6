"""Stream processor restart with state: time to first output and memory (issue 17, target 3).

    .venv/bin/python -m bench.restart [--entities 100000 1000000] [--passes 3] [--store rocksdb://]

For 0 entities (the baseline) and each count asked for, a new deployment of the housing
processor on its own topics gets that many entities in its tables, written directly as the
processor would have written them (``bench/restart_state.py``: the processor's own steps,
changelog records, repartition messages and committed offsets; pushing a million events
through a worker would take a quarter of an hour). Then, ``--passes`` times:

* one worker is started (``start_workers``, as ``bench.processor`` does) and one probe event
  is published at once: a new release case in a local authority of the seeded state;
* **start to first output**: from the start of the worker to the arrival of the probe's
  derived figures on the figures topic. The worker must restore its tables from their
  changelogs, rebuild its groups and process the probe through both stages. The figures
  must count every seeded release case of the area plus the probes (else the pass fails:
  the state was not restored as the processor wrote it);
* **memory**: the worker's peak resident set (``VmHWM`` in ``/proc/<pid>/status``) at that
  moment, and its resident set then;
* **restore**: from the start of the worker to Faust's "Recovery complete" in its log;
* the worker is stopped (SIGTERM) and the next pass starts a new one on the same state.

Figures are the median of the passes. With ``--store rocksdb://`` one more pass comes first,
on an empty local store (a worker on a new machine: everything is read from the changelogs),
reported apart; the passes after it keep their store on disk, as a restarted worker does.
Starts its own broker and registry unless
KAFKA_BOOTSTRAP_SERVERS / SCHEMA_REGISTRY_URL are set. Writes bench/results/restart-<store>.json
(restart-rocksdb.json, restart-memory.json) and redraws the chart docs/restart-with-state.svg
from both.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from rich.console import Console
from rich.table import Table

from bench.common import load_average, machine, platform_services, write_results
from bench.processor_run import bench_config, load_areas
from bench.restart_chart import restart_chart
from bench.restart_state import seed_state
from dataplatform.kafka_config import reliable_producer_config
from dataplatform.product_io.serialization import ProductSerde, registry_client
from dataplatform.products.envelope import ChangeEvent
from dataplatform.products.product import get_product
from dataplatform.stream_processors.config import STORES
from dataplatform.stream_processors.deployment.pool import WorkerPool, start_workers
from dataplatform.stream_processors.deployment.topic_layout import ensure_topics
from tests.support.entities import RELEASES, release_case

CHART = Path(__file__).resolve().parent.parent / "docs" / "restart-with-state.svg"
TARGET_S = 30.0   # issue 17: first output within 30 s of a restart with 1,000,000 entities
FIRST_OUTPUT_TIMEOUT_S = 900.0
FIGURES = "area_supply_demand"
PROBE_AREA = 1   # an odd index of load_areas(): the seeded events there are all release cases
RECOVERY_DONE = re.compile(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\].*Recovery complete")


class Deployment:
    """One processor deployment on its own topics, with ``entities`` entities in its state."""

    def __init__(self, bootstrap: str, registry: str, tmp: Path, entities: int, store: str) -> None:
        self.entities, self.bootstrap = entities, bootstrap
        self.config = bench_config(bootstrap, registry, tmp, f"restart-{entities}", store=store).resolved()
        client = registry_client(registry)
        self.serde = ProductSerde(get_product(RELEASES), client)
        self.figures_serde = ProductSerde(get_product(FIGURES), client)
        # the probes' area: in the seeded state only release cases go there (bench.restart_state)
        self.area, self.region = load_areas()[PROBE_AREA]
        self.producer = Producer(reliable_producer_config(bootstrap))
        self.probes = 0

    def seed(self) -> dict:
        ensure_topics(self.config)
        seeded = seed_state(self.config, self.entities, load_areas(), dt.date.today())
        return {"changelog_records": seeded.changelog_records, "repartition_messages": seeded.repartition_messages,
                "seed_seconds": seeded.seconds}

    def restart(self, **options: object) -> dict:
        """One pass: start a worker (its configuration changed by ``options``) and a probe, wait
        for the probe's figures, stop the worker."""
        self.probes += 1
        case = release_case(f"probe-{uuid.uuid4().hex[:8]}", self.area, self.region, release_date=dt.date.today())
        topic = self.config.topic(RELEASES)
        probe = self.serde.serialize_value(ChangeEvent("c", None, case, "releases-service", 1).to_record(), topic)
        figures = self._figures_reader()
        load = load_average()
        try:
            started_wall, started = time.time(), time.monotonic()
            pool = start_workers(1, config=self.config.with_(**options))
            try:
                self.producer.produce(topic, key=case["case_id"].encode(), value=probe)
                self.producer.flush(30)
                first, value = _first_record(figures, self.area.encode(), pool, started + FIRST_OUTPUT_TIMEOUT_S)
                status = _memory(pool.processes[0].pid)
                log = pool.logs[0].read_text(errors="replace")
                restored = _recovery_seconds(log, started_wall)
            finally:
                pool.stop()
        finally:
            figures.close()
        self._check(value, log)
        return {"first_output_s": round(first - started, 2), "restore_s": restored,
                "peak_rss_mb": status["VmHWM"], "rss_mb": status["VmRSS"], "load_average": load}

    def _check(self, value: bytes, log: str) -> None:
        """The first figures must count the whole seeded area, and the restore must be clean."""
        if "Error in recovery" in log:
            raise RuntimeError("the worker could not read the seeded changelogs (\"Error in recovery\" in its log)")
        after = self.figures_serde.deserialize_value(value, self.config.topic(FIGURES))["after"]
        expected = len(range(PROBE_AREA, self.entities, len(load_areas()))) + self.probes
        if (after["supply"], after["demand"]) != (0, expected):
            raise RuntimeError(f"figures of {self.area} after the restart: supply {after['supply']}, demand "
                               f"{after['demand']}; expected supply 0, demand {expected}: the state was not restored")

    def _figures_reader(self) -> Consumer:
        """A reader of the figures topic from its current end: what comes next is new."""
        topic = self.config.topic(FIGURES)
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": f"bench-restart-{uuid.uuid4().hex}",
                             "enable.auto.commit": False})
        ends = [consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
                for p in range(self.config.partitions)]
        consumer.assign([TopicPartition(topic, p, end) for p, end in enumerate(ends)])
        return consumer


def _first_record(consumer: Consumer, key: bytes, pool: WorkerPool, deadline: float) -> tuple[float, bytes]:
    """When the first record with ``key`` arrived (monotonic), and its value; fails if the worker dies."""
    while time.monotonic() < deadline:
        msg = consumer.poll(0.05)
        if msg is not None and not msg.error() and msg.key() == key:
            return time.monotonic(), msg.value()
        if not all(pool.alive()):
            raise RuntimeError(f"the worker died before its first output:\n{pool.log_tail()}")
    raise TimeoutError(f"no output within {FIRST_OUTPUT_TIMEOUT_S:.0f} s of the start:\n{pool.log_tail()}")


def _memory(pid: int) -> dict[str, float]:
    """The process's peak and current resident set, in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {name: round(int(fields[name].split()[0]) / 1024, 1) for name in ("VmHWM", "VmRSS")}


def _recovery_seconds(log: str, started_wall: float) -> float | None:
    """Seconds from the start to Faust's last "Recovery complete" in the worker's log."""
    stamps = RECOVERY_DONE.findall(log)
    if not stamps:
        return None
    done = dt.datetime.strptime(stamps[-1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
    return round(done - started_wall, 2)


def measure(bootstrap: str, registry: str, tmp: Path, entities: int, passes: int, store: str,
            console: Console, faust_cold_upto: int = 0) -> dict:
    deployment = Deployment(bootstrap, registry, tmp, entities, store)
    seeded = deployment.seed()
    console.print(f"{entities:,} entities: {seeded['changelog_records']:,} changelog records written "
                  f"in {seeded['seed_seconds']} s")
    cold = {}
    if store != "memory://":
        cold = {f"cold_{key}": value for key, value in deployment.restart().items()}
        console.print(f"  empty local store, bulk restore: {cold}")
        if 0 < entities <= faust_cold_upto:   # the baseline: Faust's own restore, on another empty store
            cold |= {f"faust_cold_{key}": value for key, value in deployment.restart(
                datadir=str(tmp / f"faust-cold-{uuid.uuid4().hex[:8]}"), bulk_restore_from=10**12).items()}
            console.print(f"  empty local store, Faust's restore: { {k: v for k, v in cold.items() if 'faust' in k} }")
    runs = []
    for i in range(passes):
        runs.append(deployment.restart())
        console.print(f"  pass {i + 1}: {runs[-1]}")
    median = {key: statistics.median(r[key] for r in runs if r[key] is not None)
              for key in ("first_output_s", "restore_s", "peak_rss_mb", "rss_mb") if any(r[key] for r in runs)}
    return {"entities": entities, **seeded, **median, **cold, "passes": runs}


def results_path(store: str) -> Path:
    return Path(__file__).resolve().parent / "results" / f"restart-{store.split(':')[0]}.json"


def _saved_results() -> dict[str, list[dict]]:
    """The rows of every store measured so far, by store."""
    found = [json.loads(path.read_text()) for path in map(results_path, STORES) if path.exists()]
    return {result["store"]: result["rows"] for result in found}


def table_of(rows: list[dict], store: str) -> Table:
    table = Table(title=f"Processor restart with state ({store}, 1 worker, median of passes)")
    for col in ("entities", "changelog records", "start → first output (s)", "restore done (s)",
                "peak RSS (MB)", "RSS after (MB)", "empty store: first output (s)", "peak RSS (MB)",
                "empty store, Faust's restore (s)"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(f"{r['entities']:,}", f"{r['changelog_records']:,}", f"{r['first_output_s']:,}",
                      f"{r.get('restore_s', '-')}", f"{r['peak_rss_mb']:,}", f"{r['rss_mb']:,}",
                      f"{r.get('cold_first_output_s', '-')}", f"{r.get('cold_peak_rss_mb', '-')}",
                      f"{r.get('faust_cold_first_output_s', '-')}")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, nargs="+", default=[100_000, 1_000_000],
                        help="entity counts to measure (a 0-entity baseline is always measured first)")
    parser.add_argument("--passes", type=int, default=3, help="restarts per entity count (median reported)")
    parser.add_argument("--store", choices=STORES, default=STORES[0], help="the processor's table store")
    parser.add_argument("--faust-cold-upto", type=int, default=100_000,
                        help="also time Faust's own restore on an empty store (the baseline) up to this many "
                             "entities (it takes about 9 minutes at 1,000,000)")
    args = parser.parse_args()
    console = Console()
    counts = [0] + [n for n in args.entities if n]
    with tempfile.TemporaryDirectory(prefix="bench-restart-") as tmp_name, \
            platform_services(Path(tmp_name)) as (bootstrap, registry):
        rows = []
        for n in counts:
            rows.append(measure(bootstrap, registry, Path(tmp_name), n, args.passes, args.store, console,
                                args.faust_cold_upto))
            result = {"store": args.store, "target_first_output_s": TARGET_S, "passes": args.passes, "rows": rows,
                      "machine": machine(), "load_average_end": load_average()}
            write_results(results_path(args.store), result, console)   # an interrupted run keeps its rows
    console.print(table_of(rows, args.store))
    CHART.write_text(restart_chart(_saved_results(), TARGET_S))
    console.print(f"wrote {CHART}")


if __name__ == "__main__":
    main()
