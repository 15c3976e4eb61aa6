"""SQL sink throughput against a plain bulk insert of the same rows, in the same process.

    .venv/bin/python -m bench.sink [--events N] [--batch-size B]

N change events (default 20,000, one per key) are produced once to a topic. For each
database (SQLite in a temporary file; PostgreSQL from TEST_DATABASE_URL or
./scripts/ensure-postgres.sh) and each mode (upsert, append) a fresh SqlSink group reads
the whole topic; rows/s is N over the time from partition assignment to the last batch
committed (decoding, mapping, upsert, offsets in the same transaction included). The
baseline inserts the very rows the sink wrote into a copy of its table with
``conn.execute(insert(table), rows)`` (executemany, insertmanyvalues) in the same batch
size, same driver, no Kafka. On PostgreSQL a raw ``COPY`` of the same rows is timed too, as
the ceiling (the sink itself loads through COPY there).

The cost of the history table's unique event-id index: ``--index-passes`` P alternating
passes per database of the append sink as it is and as it was before the index
(``BeforeEventIndexSink``: unique on (partition, offset) only), each on a fresh table;
median rows/s of each and their ratio. Writes bench/results/sink.json.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from rich.console import Console
from rich.table import Table as RichTable
from sqlalchemy import Column, MetaData, Table, func, insert, select

from bench.common import TimedAssignment, load_average, machine, platform_services, time_sink
from dataplatform.config import Settings
from dataplatform.product_io.serialization import ProductSerde, registry_client
from dataplatform.products.envelope import ChangeEvent
from dataplatform.products.product import DataProduct, get_product
from dataplatform.sinks.sql.bulk import insert_rows
from dataplatform.sinks.sql.history_index import event_index, event_index_name
from dataplatform.sinks.sql.offsets import offsets_table
from dataplatform.sinks.sql.tables import table_name
from dataplatform.sinks.sql.writer import SqlSink, make_engine

RESULTS = Path(__file__).resolve().parent / "results" / "sink.json"
REPO = Path(__file__).resolve().parent.parent


def bench_product() -> DataProduct:
    """The releases product under a unique name, so the bench has its own topic and tables."""
    base = get_product("prison_releases_housing_need")
    manifest = base.manifest.model_copy(update={"name": f"bench_sink_{uuid.uuid4().hex[:8]}"})
    return DataProduct(manifest=manifest, entity_schema=base.entity_schema, folder=base.folder)


def produce(bootstrap: str, registry: str, product: DataProduct, n: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(product.topic, 1)])[product.topic].result(30)
    serde = ProductSerde(product, registry_client(registry))
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "compression.type": "lz4"})
    for i in range(n):
        e = {"case_id": f"case-{i}", "person_ref": f"P{i}", "prison_code": "MRI",
             "expected_release_date": dt.date(2026, 12, 1 + i % 28), "local_authority_code": "E08000003",
             "region_code": "E12000002", "housing_need": "general", "status": "scheduled",
             "updated_at": dt.datetime(2026, 11, 27, tzinfo=dt.timezone.utc)}
        event = ChangeEvent("c", None, e, "bench", 1)
        producer.produce(product.topic, key=e["case_id"].encode(), value=serde.serialize_value(event.to_record()))
        if i % 1000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0


def postgres_url() -> str | None:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    script = REPO / "scripts" / "ensure-postgres.sh"
    with contextlib.suppress(Exception):
        return subprocess.run([str(script)], capture_output=True, text=True, check=True, timeout=300).stdout.strip() or None
    return None


class TimedSqlSink(TimedAssignment, SqlSink):
    pass


class BeforeEventIndexSink(TimedSqlSink):
    """The append sink before its history table was unique on the event id: the index
    dropped, ON CONFLICT on (partition, offset) only."""

    def open(self) -> None:
        super().open()
        with self.engine.begin() as conn:
            for topic in self.products:
                conn.exec_driver_sql(f'DROP INDEX IF EXISTS "{event_index_name(self.table_name(topic))}"')

    def _append(self, conn, table, items, batch) -> None:  # noqa: ANN001
        insert_rows(conn, table, [i.row for i in items],
                    lambda ins: ins.on_conflict_do_nothing(index_elements=["_kafka_partition", "_kafka_offset"]))


def run_sink(settings: Settings, product: DataProduct, url: str, mode: str, n: int, batch_size: int,
             sink_class: type[TimedSqlSink] = TimedSqlSink) -> float:
    sink = sink_class(settings, products=[product], database_url=url, mode=mode, group=f"bench-{uuid.uuid4().hex[:8]}",
                        batch_size=batch_size, batch_timeout=0.5)
    engine = make_engine(url)
    offsets = offsets_table(MetaData())

    def written() -> bool:
        with contextlib.suppress(Exception), engine.connect() as conn:   # no offsets table before the first batch
            done = conn.execute(select(func.sum(offsets.c.next_offset)).where(offsets.c.group_id == sink.group)).scalar()
            return bool(done and done >= n)
        return False

    try:
        return n / time_sink(sink, written, f"write {n} rows", timeout=300, interval=0.02)
    finally:
        engine.dispose()


def baseline(url: str, source: str, n: int, batch_size: int) -> tuple[float, float | None]:
    """Rows/s of a plain executemany insert of the rows the sink wrote into a copy of its
    table; on PostgreSQL also of a raw COPY of the same rows (the ceiling, for reference)."""
    engine = make_engine(url)
    table = Table(source, MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(table))]
    assert len(rows) == n

    def timed(load) -> float:  # noqa: ANN001
        copy = Table(f"{source}_baseline", MetaData(), *[
            Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable, autoincrement=False) for c in table.c])
        copy.create(engine)
        try:
            start = time.perf_counter()
            for i in range(0, n, batch_size):
                with engine.begin() as conn:
                    load(conn, copy, rows[i:i + batch_size])
            return n / (time.perf_counter() - start)
        finally:
            copy.drop(engine)

    def raw_copy(conn, copy, chunk) -> None:  # noqa: ANN001
        names = [c.name for c in copy.c]
        with conn.connection.driver_connection.cursor() as cur, \
                cur.copy(f'COPY "{copy.name}" ({", ".join(names)}) FROM STDIN') as out:
            for r in chunk:
                out.write_row([r[c] for c in names])

    executemany = timed(lambda conn, copy, chunk: conn.execute(insert(copy), chunk))
    ceiling = timed(raw_copy) if engine.dialect.name == "postgresql" else None
    engine.dispose()
    return executemany, ceiling


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=5_000)
    parser.add_argument("--index-passes", type=int, default=5, help="alternating passes with/without the event-id index")
    args = parser.parse_args()
    console = Console()
    results, index_cost = [], []
    load_before = load_average()
    with tempfile.TemporaryDirectory() as tmpdir, platform_services(Path(tmpdir)) as (bootstrap, registry):
        settings = Settings(kafka_bootstrap_servers=bootstrap, schema_registry_url=registry)
        product = bench_product()
        console.print(f"producing {args.events} events to {product.topic}")
        produce(bootstrap, registry, product, args.events)
        databases = {"sqlite": f"sqlite:///{Path(tmpdir) / 'bench.db'}"}
        pg = postgres_url()
        if pg:
            databases["postgresql"] = pg
        else:
            console.print("[yellow]no PostgreSQL (TEST_DATABASE_URL, scripts/ensure-postgres.sh): SQLite only")
        for db, url in databases.items():
            try:
                for mode in ("upsert", "append"):
                    rate = run_sink(settings, product, url, mode, args.events, args.batch_size)
                    base, ceiling = baseline(url, table_name(product.topic, mode), args.events, args.batch_size)
                    results.append({"database": db, "mode": mode, "events": args.events,
                                    "batch_size": args.batch_size, "rows_per_s": round(rate),
                                    "baseline_rows_per_s": round(base), "ratio_vs_baseline": round(rate / base, 2),
                                    "copy_rows_per_s": round(ceiling) if ceiling else None,
                                    "ratio_vs_copy": round(rate / ceiling, 2) if ceiling else None})
                if args.index_passes:
                    index_cost.append(event_index_cost(settings, product, url, db, args))
            finally:
                cleanup(url, product)
    table = RichTable("database", "mode", "sink rows/s", "baseline rows/s", "ratio", "raw COPY rows/s",
                      "ratio vs COPY", title="SQL sink vs bulk insert")
    for r in results:
        table.add_row(r["database"], r["mode"], f"{r['rows_per_s']:,}", f"{r['baseline_rows_per_s']:,}",
                      f"{r['ratio_vs_baseline']:.2f}", f"{r['copy_rows_per_s']:,}" if r["copy_rows_per_s"] else "-",
                      f"{r['ratio_vs_copy']:.2f}" if r["ratio_vs_copy"] else "-")
    console.print(table)
    if index_cost:
        cost = RichTable("database", "sink before the index", "sink with it", "ratio", "write step before",
                         "write step with it", "ratio (paired)",
                         title="history table's unique event-id index (rows/s, medians of alternating passes)")
        for r in index_cost:
            cost.add_row(r["database"], f"{r['before_rows_per_s']:,}", f"{r['with_index_rows_per_s']:,}",
                         f"{r['ratio']:.2f}", f"{r['write_before_rows_per_s']:,}",
                         f"{r['write_with_index_rows_per_s']:,}", f"{r['write_ratio']:.2f}")
        console.print(cost)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"date": dt.date.today().isoformat(), "machine": machine(), "results": results,
                                   "event_index": index_cost, "load_average": [load_before, load_average()]},
                                  indent=2) + "\n")
    console.print(f"wrote {RESULTS}")


def event_index_cost(settings: Settings, product: DataProduct, url: str, db: str, args) -> dict:  # noqa: ANN001
    """Alternating passes of the append sink with and without the event-id index, each on a
    fresh table; then the write step alone (the sink's insert of the same rows, no Kafka)."""
    rates: dict[str, list[float]] = {"before": [], "with": []}
    for _ in range(args.index_passes):
        for variant, sink_class in (("before", BeforeEventIndexSink), ("with", TimedSqlSink)):
            cleanup(url, product)
            rates[variant].append(run_sink(settings, product, url, "append", args.events, args.batch_size, sink_class))
    before, with_index = statistics.median(rates["before"]), statistics.median(rates["with"])
    writes = write_step_cost(url, table_name(product.topic, "append"), args.batch_size, args.index_passes * 3)
    return {"database": db, "passes": args.index_passes, "before_rows_per_s": round(before),
            "with_index_rows_per_s": round(with_index), "ratio": round(with_index / before, 2),
            "before_passes": [round(r) for r in rates["before"]], "with_passes": [round(r) for r in rates["with"]],
            **writes}


def write_step_cost(url: str, source: str, batch_size: int, passes: int) -> dict:
    """Rows/s of the sink's own insert (``insert_rows``, COPY on PostgreSQL) of the rows it wrote
    into a fresh copy of its table, before the index (ON CONFLICT on the position) and with it
    (ON CONFLICT DO NOTHING on both), alternating; medians and the median of paired ratios."""
    engine = make_engine(url)
    table = Table(source, MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(table))]
    rates: dict[str, list[float]] = {"before": [], "with": []}
    for _ in range(passes):
        for variant in ("before", "with"):
            copy = Table(f"{source}_baseline", MetaData(), *[
                Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable, autoincrement=False)
                for c in table.c])
            if variant == "with":
                event_index(copy)
            target = ["_kafka_partition", "_kafka_offset"] if variant == "before" else None
            copy.create(engine)
            try:
                start = time.perf_counter()
                for i in range(0, len(rows), batch_size):
                    with engine.begin() as conn:
                        insert_rows(conn, copy, rows[i:i + batch_size],
                                    lambda ins, t=target: ins.on_conflict_do_nothing(index_elements=t))
                rates[variant].append(len(rows) / (time.perf_counter() - start))
            finally:
                copy.drop(engine)
    engine.dispose()
    pairs = [w / b for b, w in zip(rates["before"], rates["with"])]
    return {"write_before_rows_per_s": round(statistics.median(rates["before"])),
            "write_with_index_rows_per_s": round(statistics.median(rates["with"])),
            "write_ratio": round(statistics.median(pairs), 2), "write_passes": passes}


def cleanup(url: str, product: DataProduct) -> None:
    """Drop the bench's tables and offsets so a shared database is left as found."""
    engine = make_engine(url)
    meta = MetaData()
    with engine.begin() as conn:
        for mode in ("upsert", "append"):
            for suffix in ("", "_baseline"):
                Table(table_name(product.topic, mode) + suffix, meta).drop(conn, checkfirst=True)
        offsets = offsets_table(MetaData())
        conn.execute(offsets.delete().where(offsets.c.topic == product.topic))
    engine.dispose()


if __name__ == "__main__":
    main()
