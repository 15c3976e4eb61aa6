"""``dataplatform sink``: keep data products in SQL tables and Parquet files, and watch the lag.

Each sink is a Kafka consumer group (start as many instances as you like; partitions are
shared between them). Ctrl-C or SIGTERM writes what is in hand and stops.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from dataplatform.cli.long_running import serve_metrics_or_exit, stop_on_signals
from dataplatform.config import get_settings

app = typer.Typer(help="Sink connectors: data product topics into SQL tables, Parquet files and Iceberg tables.",
                  no_args_is_help=True)
console = Console()

Topics = typer.Option(..., "--topic", "-t", help="Data product topic to sink (repeat for several).")
AllowPersonal = typer.Option([], "--allow-personal",
                             help="Product whose personal fields are kept as HMAC-SHA256 hashes (needs "
                                  "SINK_PERSONAL_DATA_KEY). Default: personal fields are left out.")
BatchSize = typer.Option(2000, "--batch-size", min=1, help="Rows per write (and per checkpoint).")
BatchTimeout = typer.Option(1.0, "--batch-timeout", min=0.01, help="Seconds before a partial batch is written.")
InstanceId = typer.Option(None, "--instance-id",
                          help="Static group membership id [default: <group>-<host>-<n>, n the lowest slot "
                               "free on this host]: a restarted instance takes its partitions back at once.")
ProductsRoot = typer.Option(None, "--products-root", help="Folder of <domain>/<name>/ products (default: schemas/).")
MetricsPort = typer.Option(None, "--metrics-port", help="Serve Prometheus metrics (rows written, commit time) "
                                                        "on this port at /metrics (needs API_READ_TOKEN or "
                                                        "API_WRITE_TOKEN once API_READ_TOKEN is set).")


def _fail(what: str, exc: BaseException) -> None:
    typer.secho(f"error: {what}: {exc}", err=True, fg="red")
    raise typer.Exit(1)


def _run_until_signal(sink, metrics_port: int | None = None) -> None:  # noqa: ANN001
    stop = stop_on_signals()
    if metrics_port:
        console.print(serve_metrics_or_exit(metrics_port, get_settings()), highlight=False, soft_wrap=True)
    console.print(f"[bold]{type(sink).__name__}[/bold] group [cyan]{sink.group}[/cyan] on "
                  f"{', '.join(sink.products)}. Ctrl-C stops.", highlight=False)
    sink.run(stop)
    console.print(f"stopped: {sink.rows_written} rows in {sink.batches_written} batches, "
                  f"{sink.dead_letters.sent} dead letters")


@app.command("sql")
def sql(
    topic: list[str] = Topics,
    mode: str = typer.Option("upsert", "--mode", help="upsert: current state, one row per key (table <topic>); "
                                                       "append: every event (table <topic>_history)."),
    database_url: str = typer.Option(None, "--database-url", help="SQLAlchemy URL (default: DATABASE_URL or SQLite)."),
    delete_mode: str = typer.Option("hard", "--delete-mode", help="hard: deletes remove the row; soft: set _deleted."),
    group: str = typer.Option("dataplatform-sink-sql", "--group", help="Kafka consumer group (and offsets key)."),
    allow_personal: list[str] = AllowPersonal, batch_size: int = BatchSize, batch_timeout: float = BatchTimeout,
    instance_id: str = InstanceId, products_root: Path = ProductsRoot, metrics_port: int = MetricsPort,
) -> None:
    """Keep topics in SQL tables (tables named after the topic: dots become '__')."""
    from dataplatform.sinks.records import UnknownTopicError
    from dataplatform.sinks.sql.history_index import DuplicateEventsError
    from dataplatform.sinks.sql.upsert import UnsupportedDatabaseError
    from dataplatform.sinks.sql.writer import SqlSink

    if mode not in ("upsert", "append") or delete_mode not in ("hard", "soft"):
        _fail("bad option", ValueError("--mode is upsert|append and --delete-mode is hard|soft"))
    try:
        sink = SqlSink(get_settings(), topics=topic, mode=mode, database_url=database_url, delete_mode=delete_mode,
                       group=group, allow_personal=allow_personal, batch_size=batch_size, batch_timeout=batch_timeout,
                       instance_id=instance_id, products_root=products_root)
    except (UnknownTopicError, UnsupportedDatabaseError, ValueError) as exc:
        _fail("cannot start the SQL sink", exc)
    try:
        _run_until_signal(sink, metrics_port)
    except DuplicateEventsError as exc:   # a history table from before its event-id index
        _fail("cannot start the SQL sink", exc)


@app.command("parquet")
def parquet(
    topic: list[str] = Topics,
    path: str = typer.Option(None, "--path", help="Output folder or fsspec URL (default: DATAPLATFORM_HOME/parquet)."),
    group: str = typer.Option("dataplatform-sink-parquet", "--group", help="Kafka consumer group."),
    allow_personal: list[str] = AllowPersonal, batch_size: int = BatchSize, batch_timeout: float = BatchTimeout,
    instance_id: str = InstanceId, products_root: Path = ProductsRoot, metrics_port: int = MetricsPort,
    roll_size_mb: float = typer.Option(None, "--roll-size-mb", min=0.001,
                                       help="Write a file once its rows take this many MB (default: "
                                            "PARQUET_ROLL_SIZE_MB or 128)."),
    roll_seconds: float = typer.Option(None, "--roll-seconds", min=0.01,
                                       help="...or once it is this old (default: PARQUET_ROLL_SECONDS or 900)."),
    compact_seconds: float = typer.Option(None, "--compact-seconds", min=0,
                                          help="Merge small files of days that are over this often "
                                               "(default: PARQUET_COMPACT_SECONDS or 3600; 0: never)."),
) -> None:
    """Keep topics as Parquet files: <path>/<product>/date=YYYY-MM-DD/part-<partition>-<first>-<last>.parquet,
    rolled by size and age, small files of past days compacted."""
    from dataplatform.sinks.records import UnknownTopicError
    from dataplatform.sinks.parquet import ParquetSink

    try:
        sink = ParquetSink(get_settings(), topics=topic, path=path, group=group, allow_personal=allow_personal,
                           batch_size=batch_size, batch_timeout=batch_timeout, instance_id=instance_id,
                           products_root=products_root, roll_size_mb=roll_size_mb, roll_seconds=roll_seconds,
                           compact_seconds=compact_seconds)
    except (UnknownTopicError, ValueError) as exc:
        _fail("cannot start the Parquet sink", exc)
    _run_until_signal(sink, metrics_port)


@app.command("iceberg")
def iceberg(
    topic: list[str] = Topics,
    group: str = typer.Option("dataplatform-sink-iceberg", "--group",
                              help="Kafka consumer group (and the key of its offsets in the snapshot summaries)."),
    allow_personal: list[str] = AllowPersonal, batch_size: int = BatchSize, batch_timeout: float = BatchTimeout,
    instance_id: str = InstanceId, products_root: Path = ProductsRoot, metrics_port: int = MetricsPort,
    commit_seconds: float = typer.Option(None, "--commit-seconds", min=0.01,
                                         help="Commit at least this often (default: ICEBERG_COMMIT_SECONDS or 300)."),
    commit_rows: int = typer.Option(None, "--commit-rows", min=1,
                                    help="...and once this many rows are held (default: ICEBERG_COMMIT_ROWS or 100000)."),
    maintenance_seconds: float = typer.Option(None, "--maintenance-seconds", min=0,
                                              help="Expire snapshots and remove orphan files this often (default: "
                                                   "ICEBERG_MAINTENANCE_SECONDS or 3600; 0: never)."),
    retention_hours: float = typer.Option(None, "--snapshot-retention-hours", min=0.001,
                                          help="Expire snapshots older than this (default: "
                                               "ICEBERG_SNAPSHOT_RETENTION_HOURS or 168)."),
) -> None:
    """Keep topics as Apache Iceberg tables: per product <domain>.<name>_v<major>_history (every
    change event, partitioned by day) and <domain>.<name>_v<major> (one row per key), exactly once.

    The catalog is pyiceberg's own configuration of ICEBERG_CATALOG (PYICEBERG_CATALOG__<NAME>__URI=...,
    or .pyiceberg.yaml), else the embedded SQL catalog under DATAPLATFORM_HOME/iceberg.

    Example: dataplatform sink iceberg -t hmpps.social_housing_availability.v1 --commit-seconds 60
    """
    from datetime import timedelta

    from dataplatform.sinks.iceberg.catalog import describe_catalog
    from dataplatform.sinks.iceberg.sink import IcebergSink
    from dataplatform.sinks.records import UnknownTopicError

    try:
        sink = IcebergSink(get_settings(), topics=topic, group=group, allow_personal=allow_personal,
                           batch_size=batch_size, batch_timeout=batch_timeout, instance_id=instance_id,
                           products_root=products_root, commit_seconds=commit_seconds, commit_rows=commit_rows,
                           maintenance_seconds=maintenance_seconds,
                           snapshot_retention=timedelta(hours=retention_hours) if retention_hours else None)
    except (UnknownTopicError, ValueError) as exc:
        _fail("cannot start the Iceberg sink", exc)
    try:
        console.print(f"Iceberg catalog {sink.catalog.name!r}: {describe_catalog(sink.catalog)}", highlight=False)
    except Exception as exc:  # noqa: BLE001 - reported with what to check
        _fail("cannot open the Iceberg catalog (check ICEBERG_CATALOG and its PYICEBERG_CATALOG__… settings)", exc)
    _run_until_signal(sink, metrics_port)


@app.command("status")
def status(
    database_url: str = typer.Option(None, "--database-url", help="Where the SQL sinks keep offsets (default: DATABASE_URL)."),
    parquet_path: str = typer.Option(None, "--parquet-path", help="Also show the Parquet sink writing here."),
    iceberg: bool = typer.Option(False, "--iceberg", help="Also show the Iceberg sink's offsets in its tables "
                                                          "(the catalog of ICEBERG_CATALOG, as the sink opens it)."),
    products_root: Path = ProductsRoot,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Each sink group's lag per partition, last stored offset, rows written, last error, and for
    the Parquet sink the files and rows on disk per partition.

    Example: dataplatform sink status --parquet-path .dataplatform/parquet --iceberg"""
    from dataplatform.sinks.iceberg.catalog import open_catalog
    from dataplatform.sinks.status import sink_status

    try:
        catalog = open_catalog(get_settings()) if iceberg else None
        rows = sink_status(get_settings(), database_url, parquet_path, products_root=products_root,
                           iceberg_catalog=catalog)
    except Exception as exc:  # noqa: BLE001 - reported with where and how to fix
        _fail("cannot read sink status (is DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS right?)", exc)
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in rows], indent=2))
        return
    if not rows:
        console.print("no sink has written anything yet")
        return
    table = Table("group", "topic", "partition", "next offset", "high watermark", "lag", "rows", "files", "last error")
    for r in rows:
        table.add_row(r.group, r.topic, str(r.partition), str(r.next_offset), str(r.high_watermark),
                      str(r.lag), str(r.rows_written if r.rows_written is not None else ""),
                      str(r.files if r.files is not None else ""), r.last_error or "")
    console.print(table)


@app.command("compact")
def compact(
    path: str = typer.Option(None, "--path", help="Parquet folder or fsspec URL (default: DATAPLATFORM_HOME/parquet)."),
    target_mb: float = typer.Option(None, "--target-mb", min=0.001,
                                    help="Largest merged file (default: PARQUET_ROLL_SIZE_MB or 128)."),
    before: str = typer.Option(None, "--before", help="Compact days before this one, YYYY-MM-DD (default: today, UTC)."),
    products_root: Path = ProductsRoot,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Merge the small Parquet files of days that are over, e.g. from cron when the sinks'
    own compaction is off (--compact-seconds 0). Safe while a sink writes: a late event
    only adds a new file, and leftovers of an interrupted merge are removed next time."""
    import datetime as dt

    import fsspec

    from dataplatform.products.product import load_products
    from dataplatform.sinks.parquet_compaction import compact_product
    from dataplatform.sinks.parquet_files import product_dir

    settings = get_settings()
    try:
        day = dt.date.fromisoformat(before) if before else dt.datetime.now(dt.timezone.utc).date()
    except ValueError:
        _fail("bad --before", ValueError(f"{before!r} is not a date YYYY-MM-DD"))
    fs, root = fsspec.core.url_to_fs(path or str((settings.dataplatform_home / "parquet").resolve()))
    if not fs.exists(root):
        _fail("nothing to compact", FileNotFoundError(f"{root} does not exist (is --path right?)"))
    target = int((target_mb or settings.parquet_roll_size_mb) * 1024 * 1024)
    products = load_products(products_root) if products_root else load_products()
    merged = {name: compact_product(fs, product_dir(root, name), before=day, target_bytes=target)
              for name in sorted(products)}
    if as_json:
        typer.echo(json.dumps({"before": day.isoformat(), "files_merged": merged}))
        return
    for name, count in merged.items():
        console.print(f"{name}: {count} files merged" if count else f"{name}: nothing to merge")