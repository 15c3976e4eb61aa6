"""Checking the Iceberg sink's tables: two independent readers, and the tables recomputed
from the topic itself.

The second reader is DuckDB over the Parquet data files that pyiceberg's scan plan lists,
read from the local disk or S3 (:func:`tests.support.lakehouse.read_with_duckdb`; DuckDB's
own Iceberg extension is downloaded at run time, which tests cannot do)."""

from __future__ import annotations

from collections.abc import Sequence

from pyiceberg.table import Table

from dataplatform.product_io.serialization import ProductSerde, registry_client
from dataplatform.products.product import DataProduct
from dataplatform.sinks.iceberg.offsets import stored_offsets
from tests.support.kafka import consume, end_offset
from tests.support.lakehouse import read_with_duckdb

IDENTITY = ("_kafka_partition", "_kafka_offset")


def scan_rows(table: Table) -> list[dict]:
    return table.scan().to_arrow().to_pylist()


def duckdb_rows(table: Table, columns: Sequence[str]) -> list[tuple]:
    """The same table read by DuckDB from the data files, ``columns`` of each row, sorted."""
    rows = read_with_duckdb(table, f"SELECT {', '.join(columns)} FROM t").to_pylist()
    return sorted(tuple(r[c] for c in columns) for r in rows)


def assert_readers_agree(table: Table, columns: Sequence[str] = (*IDENTITY, "_key", "_op")) -> None:
    ours = sorted(tuple(r[c] for c in columns) for r in scan_rows(table))
    assert ours == duckdb_rows(table, columns), f"pyiceberg and DuckDB read {table.name()} differently"


def topic_events(bootstrap: str, registry_url: str, product: DataProduct, partitions: int,
                 skip_unreadable: bool = False) -> list[dict]:
    """Every record of the product's topic, decoded: partition, offset, key, op (``t`` for a
    tombstone); with ``skip_unreadable``, without the records that are not Avro (poison)."""
    total = sum(end_offset(bootstrap, product.topic, p) for p in range(partitions))
    serde = ProductSerde(product, registry_client(registry_url), auto_register=False)
    out = []
    for msg in consume(bootstrap, product.topic, total):
        try:
            value = serde.deserialize_value(msg.value(), product.topic) if msg.value() is not None else None
        except Exception:
            if skip_unreadable:
                continue
            raise
        out.append({"partition": msg.partition(), "offset": msg.offset(), "key": serde.deserialize_key(msg.key()),
                    "op": value["op"] if value else "t", "value": value})
    return sorted(out, key=lambda e: (e["partition"], e["offset"]))


def expected_current(events: list[dict]) -> dict[str, tuple[int, int]]:
    """Each key's last event, unless it deletes: key -> (partition, offset)."""
    state: dict[str, tuple[int, int] | None] = {}
    for e in events:
        state[e["key"]] = None if e["op"] in ("d", "t") else (e["partition"], e["offset"])
    return {k: v for k, v in state.items() if v is not None}


def assert_tables_match_topic(history: Table, current: Table, events: list[dict], group: str,
                              end_offsets: dict[tuple[str, int], int]) -> None:
    """0 missing, 0 duplicate, 0 wrong rows in either table, and both tables' offsets at the end."""
    hist = [(r["_kafka_partition"], r["_kafka_offset"], r["_key"], r["_op"]) for r in scan_rows(history)]
    assert len(hist) == len(set(hist)), "duplicate rows in the history table"
    assert sorted(hist) == [(e["partition"], e["offset"], e["key"], e["op"]) for e in events]
    cur = {r["_key"]: (r["_kafka_partition"], r["_kafka_offset"]) for r in scan_rows(current)}
    assert len(cur) == current.scan().to_arrow().num_rows, "a key twice in the current-state table"
    assert cur == expected_current(events)
    assert stored_offsets(history, group) == end_offsets == stored_offsets(current, group)
    assert_readers_agree(history)
