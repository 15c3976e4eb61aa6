"""Stream processor throughput, event-to-warning latency and scale-out, against two baselines.

    .venv/bin/python -m bench.processor [--events N] [--passes P] [--rates R ...] [--seconds S]
                                        [--warmup W] [--compare-python PYTHON]
                                        [--restart N ...] [--store STORE]

Every figure is the median of ``--passes`` passes (3), all in one run, with the host's load
average before and after; the processor and its load are in :mod:`bench.processor_run`, the
baselines in :mod:`bench.baselines`.

* throughput: N housing/release events (Avro-encoded beforehand, so the load generator
  costs next to nothing while the clock runs) are published as fast as the producer goes
  to a fresh deployment of 1 (then 2) workers; the clock stops when the derived
  ``area_supply_demand`` figures of every area equal the expected final figures (every
  event changes its area's figures, so that is when the last event went through the join).
  The CPU each part used meanwhile (workers, broker, this process) is recorded, in cores.
* ``--compare-python``: the Python of another installation of the platform (e.g. a
  checkout of an earlier commit with its own virtualenv). Its workers run the same passes,
  alternating with this tree's, on the same broker and events: the ratio of the two is the
  speed-up, measured in one run. Its workers are given this tree's ``ProcessorConfig`` as
  JSON, so an older checkout must ignore the fields it does not know (a one-line change to
  its ``ProcessorConfig.from_json``). Its workers run with ``PYTHONSAFEPATH=1``, so they
  import their own installation only (an earlier comparison, run from this tree's folder,
  gave the other installation's workers this tree's ``dataplatform`` modules under its
  own ``stream_processors``).
* bare aiokafka loop (baseline): this process consumes the same events, decodes them with
  the same ProductSerde and produces one small JSON record per event.
* Faust floor (second baseline): the same step as a stateless Faust agent
  (``bench/faust_floor.py``, its own process), batched like the processor; also per CPU
  second (the worker's CPU per event against the floor agent's), which the waits of the
  processor's crash-safety barriers do not enter.
* latency: with one worker running, events are paced at the highest rate for ``--warmup``
  seconds (not counted: the broker's JIT compiler is still busy at first), then measured
  for ``--seconds`` at each rate, a probe every 50 events (at most two a second: two flips
  within one batch cancel out) that flips a warning in Newcastle; the latency of a
  warning is its arrival at a consumer minus ``evidence_at`` (the ts of the probe event
  behind it). p50/p95/p99 per pass; the median over passes.
* ``--restart N ...``: restart with N entities in the tables on ``--store``, from start to
  first output, and the worker's memory (:mod:`bench.restart`, which also draws the chart),
  on the same broker after the figures above. Off unless asked: with a million entities it
  takes about 20 minutes.

Starts its own broker and registry unless KAFKA_BOOTSTRAP_SERVERS / SCHEMA_REGISTRY_URL
are set. Writes bench/results/processor.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.baselines import baseline, faust_floor
from bench.common import load_average, machine, platform_services, write_results
from bench.processor_run import Throughput, latency, load_events, pct, throughput
from bench.restart import measure as measure_restart
from bench.restart import table_of as restart_table
from dataplatform.stream_processors.config import STORES
from dataplatform.kafka.node import EmbeddedKafka

RESULTS = Path(__file__).resolve().parent / "results" / "processor.json"


@contextmanager
def safe_path(on: bool) -> Iterator[None]:
    """``PYTHONSAFEPATH=1`` for the processes started meanwhile, when ``on``."""
    if on:
        os.environ["PYTHONSAFEPATH"] = "1"
    try:
        yield
    finally:
        if on:
            os.environ.pop("PYTHONSAFEPATH", None)


def median_cores(passes: list[Throughput]) -> dict[str, float]:
    return {name: round(statistics.median(p.cores[name] for p in passes), 2) for name in passes[0].cores}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000, help="events per throughput pass")
    parser.add_argument("--passes", type=int, default=3, help="passes per figure (the median is reported)")
    parser.add_argument("--rates", type=float, nargs="+", default=[1000.0, 2000.0], help="paced events/s for latency")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each measured paced phase")
    parser.add_argument("--warmup", type=float, default=15.0,
                        help="seconds of paced load before the latency is measured (not counted)")
    parser.add_argument("--compare-python", help="the Python of another installation to run the same passes with")
    parser.add_argument("--restart", type=int, nargs="+", default=[], metavar="N",
                        help="also measure a restart with N entities in the tables (e.g. 100000 1000000)")
    parser.add_argument("--store", choices=STORES, default=STORES[0], help="the table store of --restart")
    args = parser.parse_args()
    console = Console()
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="bench-processor-") as tmp_name, \
            platform_services(Path(tmp_name)) as (bootstrap, registry):
        tmp = Path(tmp_name)
        broker_pid = EmbeddedKafka(tmp / "kafka").running_pid()
        events = load_events(args.events)

        def one_pass(workers: int, executable: str | None = None) -> Throughput:
            # the other installation's workers import its own modules only: ``python -m``
            # would put the working directory (this tree) first on sys.path
            with safe_path(bool(executable)):
                result, run = throughput(bootstrap, registry, tmp, workers, events, executable, broker_pid)
            run.stop()
            console.print(f"{workers} worker(s){' (compared)' if executable else ''}: "
                          f"{result.events_per_s:,.0f} events/s, cores {result.cores}")
            return result

        ones, befores = [], []
        for _ in range(args.passes):   # alternating, so a neighbour's burst hits both alike
            ones.append(one_pass(1))
            if args.compare_python:
                befores.append(one_pass(1, args.compare_python))
        twos = [one_pass(2) for _ in range(args.passes)]
        measured, run = throughput(bootstrap, registry, tmp, 1, events, None, broker_pid)
        try:
            base = baseline(bootstrap, registry, run, args.events + 1, args.passes)
            floors = [faust_floor(bootstrap, registry, run, args.events + 1, tmp) for _ in range(args.passes)]
            latency(run, max(args.rates), args.warmup)   # warm-up: the broker's JIT, the worker's caches
            latencies = {rate: [latency(run, rate, args.seconds) for _ in range(args.passes)] for rate in args.rates}
        finally:
            run.stop()
        restarts = [measure_restart(bootstrap, registry, tmp, n, args.passes, args.store, console)
                    for n in ([0] + args.restart if args.restart else [])]
    one = statistics.median(p.events_per_s for p in ones)
    floor = statistics.median(rate for rate, _ in floors)
    floor_cpu = statistics.median(cpu for _, cpu in floors)
    worker_cpu = statistics.median(p.cores["worker 1"] / p.events_per_s for p in ones)   # CPU s per event
    two = statistics.median(p.events_per_s for p in twos)
    result: dict = {
        "events": args.events, "passes": args.passes,
        "events_per_s": round(one, 1), "events_per_s_passes": [round(p.events_per_s) for p in ones],
        "events_per_s_two_workers": round(two, 1), "two_workers_passes": [round(p.events_per_s) for p in twos],
        "ratio_two_workers_vs_one": round(two / one, 2),
        "cores_one_worker": median_cores(ones), "cores_two_workers": median_cores(twos),
        "baseline_events_per_s": round(base, 1), "ratio_vs_baseline": round(one / base, 3),
        "faust_floor_events_per_s": round(floor, 1), "ratio_vs_faust_floor": round(one / floor, 3),
        "worker_cpu_ms_per_1000": round(worker_cpu * 1e6), "faust_floor_cpu_ms_per_1000": round(floor_cpu * 1e6),
        "ratio_vs_faust_floor_per_cpu": round(floor_cpu / worker_cpu, 3),
    }
    if befores:
        before = statistics.median(p.events_per_s for p in befores)
        result.update(compared_python=args.compare_python, compared_events_per_s=round(before, 1),
                      compared_passes=[round(p.events_per_s) for p in befores],
                      ratio_vs_compared=round(one / before, 2))
    for rate, runs in latencies.items():
        for q in (50, 95, 99):
            result[f"latency_ms_p{q}_at_{rate:.0f}"] = round(statistics.median(pct(lat, q / 100) for lat in runs), 1)
        result[f"latency_samples_at_{rate:.0f}"] = sum(len(lat) for lat in runs)
    if restarts:
        result["restart"] = {"store": args.store, "rows": restarts}
    result["load_average"] = {"before": load_before, "after": load_average()}
    result["machine"] = machine()
    console.print(table_of(result, args.rates))
    if restarts:
        console.print(restart_table(restarts, args.store))
    write_results(RESULTS, result, console)


def table_of(result: dict, rates: list[float]) -> Table:
    table = Table(title=f"Stream processor (supply/demand join + rules), median of {result['passes']} passes")
    for col in ("measure", "value"):
        table.add_column(col)
    rows = [("processor, 1 worker (events/s)", "events_per_s")]
    if "compared_events_per_s" in result:
        rows += [("compared installation, 1 worker (events/s)", "compared_events_per_s"),
                 ("ratio 1 worker / compared", "ratio_vs_compared")]
    rows += [("processor, 2 workers (events/s)", "events_per_s_two_workers"),
             ("ratio 2 workers / 1 worker", "ratio_two_workers_vs_one"),
             ("baseline aiokafka consume-decode-produce (events/s)", "baseline_events_per_s"),
             ("Faust floor: stateless agent, same step (events/s)", "faust_floor_events_per_s"),
             ("ratio 1 worker / baseline", "ratio_vs_baseline"),
             ("ratio 1 worker / Faust floor", "ratio_vs_faust_floor"),
             ("CPU ms per 1,000 events: 1 worker", "worker_cpu_ms_per_1000"),
             ("CPU ms per 1,000 events: Faust floor", "faust_floor_cpu_ms_per_1000"),
             ("ratio per CPU second: 1 worker / Faust floor", "ratio_vs_faust_floor_per_cpu")]
    for rate in rates:
        rows += [(f"event-to-warning p{q} ms at {rate:.0f}/s", f"latency_ms_p{q}_at_{rate:.0f}") for q in (50, 95, 99)]
    for label, key in rows:
        table.add_row(label, f"{result[key]:,}")
    for label, key in [("cores used, 1 worker", "cores_one_worker"), ("cores used, 2 workers", "cores_two_workers")]:
        table.add_row(label, ", ".join(f"{k} {v}" for k, v in result[key].items()))
    table.add_row("load average before / after", f"{result['load_average']['before']} / {result['load_average']['after']}")
    return table


if __name__ == "__main__":
    main()
