"""How far behind each sink is: its stored offsets against the topics' high watermarks.

The sinks' own stores are the truth about what is written (``sink_offsets`` for SQL, the
file names for Parquet), so the lag is computed from them, not from Kafka's committed
offsets (which the sinks only update afterwards, for display). For the Parquet sink it
also says how many files and rows each partition has on disk (small files are a problem
for readers: compare files with rows). For the Iceberg sink, each table's checkpoint: the
offsets in its snapshot summaries (a sink backing off from a catalog or store outage shows
as lag that grows while the table's offsets stay).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import fsspec
from confluent_kafka import Consumer, TopicPartition
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.table.snapshots import ancestors_of
from sqlalchemy import MetaData, inspect, make_url

from dataplatform.config import Settings, get_settings
from dataplatform.kafka_config import consumer_config
from dataplatform.products.envelope import from_epoch_ms
from dataplatform.products.product import load_products
from dataplatform.sinks.iceberg.names import table_names
from dataplatform.sinks.iceberg.offsets import PREFIX, decode
from dataplatform.sinks.parquet import ParquetSink
from dataplatform.sinks.parquet_files import partition_stats, product_dir, written_offsets
from dataplatform.sinks.sql.offsets import OFFSETS_TABLE, all_offsets, offsets_table
from dataplatform.sinks.sql.writer import make_engine

STATUS_GROUP = "dataplatform-sink-status"


@dataclass
class PartitionStatus:
    group: str
    topic: str
    partition: int
    next_offset: int
    high_watermark: int | None
    lag: int | None
    rows_written: int | None
    last_error: str | None
    updated_at: datetime | None
    files: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["updated_at"] = self.updated_at.isoformat() if self.updated_at else None
        return d


def sql_offsets(database_url: str) -> list[dict]:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        return []  # no SQL sink has run here (and opening it would create an empty file)
    engine = make_engine(database_url)
    try:
        if not inspect(engine).has_table(OFFSETS_TABLE):
            return []
        with engine.connect() as conn:
            return all_offsets(conn, offsets_table(MetaData()))
    finally:
        engine.dispose()


def parquet_offsets(path: str, group: str = ParquetSink.default_group, products_root: Any = None) -> list[dict]:
    fs, root = fsspec.core.url_to_fs(path)
    rows = []
    for product in (load_products(products_root) if products_root else load_products()).values():
        directory = product_dir(root, product.name)
        stats = partition_stats(fs, directory)
        for partition, next_offset in sorted(written_offsets(fs, directory).items()):
            rows.append({"group_id": f"{group} ({path})", "topic": product.topic, "partition": partition,
                         "next_offset": next_offset, "rows_written": stats[partition].rows, "last_error": None,
                         "updated_at": None, "files": stats[partition].files})
    return rows


def iceberg_offsets(catalog: Catalog, products_root: Any = None) -> list[dict]:
    """Every sink group's offsets in each product's Iceberg tables: the newest snapshot in the
    current one's ancestry that carries the group's summary property."""
    rows = []
    for product in (load_products(products_root) if products_root else load_products()).values():
        names = table_names(product)
        for identifier in (names.history_identifier, names.current_identifier):
            try:
                table = catalog.load_table(identifier)
            except NoSuchTableError:
                continue
            groups: dict[str, Any] = {}
            for snapshot in ancestors_of(table.current_snapshot(), table.metadata):
                for key, value in (snapshot.summary.additional_properties if snapshot.summary else {}).items():
                    if key.startswith(PREFIX) and key not in groups:
                        groups[key] = (value, snapshot.timestamp_ms)
            for key, (value, at_ms) in sorted(groups.items()):
                for (topic, partition), next_offset in sorted(decode(value).items()):
                    rows.append({"group_id": f"{key.removeprefix(PREFIX)} (iceberg {'.'.join(identifier)})",
                                 "topic": topic, "partition": partition, "next_offset": next_offset,
                                 "rows_written": None, "last_error": None,
                                 "updated_at": from_epoch_ms(at_ms).astimezone()})
    return rows


def sink_status(settings: Settings | None = None, database_url: str | None = None,
                parquet_path: str | None = None, bootstrap: str | None = None,
                products_root: Any = None, iceberg_catalog: Catalog | None = None) -> list[PartitionStatus]:
    """One line per (sink group, topic, partition) with its lag behind the high watermark."""
    settings = settings or get_settings()
    stored = sql_offsets(database_url or settings.effective_database_url)
    if parquet_path:
        stored += parquet_offsets(parquet_path, products_root=products_root)
    if iceberg_catalog is not None:
        stored += iceberg_offsets(iceberg_catalog, products_root)
    if not stored:
        return []
    consumer = Consumer(consumer_config(STATUS_GROUP, bootstrap, settings))
    try:
        result = []
        for row in stored:
            try:
                _low, high = consumer.get_watermark_offsets(TopicPartition(row["topic"], row["partition"]), timeout=10)
            except Exception:  # noqa: BLE001 - a deleted topic: show the stored state without lag
                high = None
            result.append(PartitionStatus(
                group=row["group_id"], topic=row["topic"], partition=row["partition"], next_offset=row["next_offset"],
                high_watermark=high, lag=None if high is None else max(0, high - row["next_offset"]),
                rows_written=row["rows_written"], last_error=row["last_error"], updated_at=row["updated_at"],
                files=row.get("files")))
        return result
    finally:
        consumer.close()
