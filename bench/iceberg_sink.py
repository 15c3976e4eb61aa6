"""Iceberg sink throughput against one pyiceberg append of the same rows, in the same process.

    .venv/bin/python -m bench.iceberg_sink [--events N] [--passes P] [--commit-rows R]

N change events (default 50,000, one per key) are produced once to a topic. Each pass
runs a fresh IcebergSink group on its own embedded SQL catalog (SQLite, local warehouse)
and times from partition assignment to the history table's snapshot holding offset N:
decoding, mapping, the history append and the current-state commit included (the sink
commits both tables; the figure counts the history rows). The baseline, in the same
pass, takes the very rows the sink wrote, builds them into an Arrow table with pyarrow
and appends them to a fresh table of the same schema with ONE pyiceberg commit: the
fastest a Python writer can put those rows in an Iceberg table, without Kafka. The time
the sink spends in its history-table commits alone (the same work as the baseline, in
commits of ``--commit-rows``) gives a like-for-like second ratio. Rows per
data file and snapshots per minute come from the sink's history table. Median of the
passes and the load average are recorded; results in bench/results/iceberg_sink.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.io.pyarrow import schema_to_pyarrow
from rich.console import Console
from rich.table import Table as RichTable

from bench.common import TimedAssignment, load_average, machine, platform_services, time_sink, write_results
from bench.sink import bench_product, produce
from dataplatform.config import Settings
from dataplatform.products.product import DataProduct
from dataplatform.sinks.iceberg.names import table_names
from dataplatform.sinks.iceberg.offsets import stored_offsets
from dataplatform.sinks.iceberg.sink import IcebergSink

RESULTS = Path(__file__).resolve().parent / "results" / "iceberg_sink.json"


class TimedIcebergSink(TimedAssignment, IcebergSink):
    """Also times its history-table commits alone: the same work as the baseline (rows
    already decoded and mapped, to Arrow, appended), for a like-for-like ratio."""

    history_seconds = 0.0

    def open(self) -> None:
        super().open()
        for committer in self.history.values():
            def timed(rows, offsets, inner=committer.commit):  # noqa: ANN001
                start = time.perf_counter()
                try:
                    return inner(rows, offsets)
                finally:
                    self.history_seconds += time.perf_counter() - start
            committer.commit = timed


def one_pass(settings: Settings, product: DataProduct, folder: Path, n: int, commit_rows: int) -> dict:
    catalog = SqlCatalog("bench", uri=f"sqlite:///{folder / 'catalog.db'}", warehouse=f"file://{folder / 'wh'}")
    sink = TimedIcebergSink(settings, products=[product], catalog=catalog, group=f"bench-{uuid.uuid4().hex[:8]}",
                            batch_size=5000, batch_timeout=0.5, commit_rows=commit_rows, commit_seconds=5)
    names = table_names(product)
    seconds = time_sink(sink, lambda: bool(sink.history) and stored_offsets(
        sink.history[product.topic].load(), sink.group).get((product.topic, 0)) == n,
        f"commit {n} rows", timeout=600, interval=0.05)
    history = catalog.load_table(names.history_identifier)
    files = history.inspect.files().to_pylist()
    rows = history.scan().to_arrow().to_pylist()
    assert len(rows) == n

    catalog.create_namespace_if_not_exists("bench")
    baseline = catalog.create_table(("bench", "baseline"), history.schema(), partition_spec=history.spec())
    start = time.perf_counter()
    baseline.append(pa.Table.from_pylist(rows, schema=schema_to_pyarrow(baseline.schema(), include_field_ids=False)))
    base_seconds = time.perf_counter() - start
    return {"rows_per_s": n / seconds, "history_commit_rows_per_s": n / sink.history_seconds,
            "baseline_rows_per_s": n / base_seconds,
            "rows_per_file": n / len(files), "files": len(files),
            "snapshots": len(history.snapshots()), "snapshots_per_minute": len(history.snapshots()) / (seconds / 60)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--commit-rows", type=int, default=10_000, help="rows per commit (files of 10,000 rows)")
    args = parser.parse_args()
    console = Console()
    passes = []
    with tempfile.TemporaryDirectory() as tmpdir, platform_services(Path(tmpdir)) as (bootstrap, registry):
        settings = Settings(kafka_bootstrap_servers=bootstrap, schema_registry_url=registry)
        product = bench_product()
        console.print(f"producing {args.events} events to {product.topic}")
        produce(bootstrap, registry, product, args.events)
        for i in range(args.passes):
            folder = Path(tmpdir) / f"pass{i}"
            folder.mkdir()
            passes.append(one_pass(settings, product, folder, args.events, args.commit_rows))
            console.print(f"pass {i + 1}: {passes[-1]['rows_per_s']:,.0f} rows/s, "
                          f"baseline {passes[-1]['baseline_rows_per_s']:,.0f} rows/s")
    median = {k: statistics.median(p[k] for p in passes) for k in passes[0]}
    ratio = statistics.median(p["rows_per_s"] / p["baseline_rows_per_s"] for p in passes)
    write_ratio = statistics.median(p["history_commit_rows_per_s"] / p["baseline_rows_per_s"] for p in passes)
    table = RichTable("events", "sink rows/s", "history commits rows/s", "baseline rows/s", "ratio (sink)",
                      "ratio (history commits)", "rows per file", "snapshots/min",
                      title=f"Iceberg sink vs one pyarrow + pyiceberg append (median of {args.passes})")
    table.add_row(f"{args.events:,}", f"{median['rows_per_s']:,.0f}", f"{median['history_commit_rows_per_s']:,.0f}",
                  f"{median['baseline_rows_per_s']:,.0f}", f"{ratio:.2f}", f"{write_ratio:.2f}",
                  f"{median['rows_per_file']:,.0f}", f"{median['snapshots_per_minute']:.1f}")
    console.print(table)
    write_results(RESULTS, {"date": dt.date.today().isoformat(), "machine": machine(), "load_average": load_average(),
                            "events": args.events, "commit_rows": args.commit_rows, "passes": passes,
                            "median": {k: round(v, 1) for k, v in median.items()},
                            "ratio_vs_baseline": round(ratio, 2),
                            "history_commits_ratio_vs_baseline": round(write_ratio, 2), "target_ratio": 0.5}, console)


if __name__ == "__main__":
    main()
