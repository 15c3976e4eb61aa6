"""What the broker-fault test's pipeline must hold at the end: every acknowledged event in
its input topic, the SQL tables at the current state, the Parquet files with each event
once, the warnings follower's store with each transition once; and whether a sink's
offsets have reached the end offsets."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import fsspec
import pyarrow.parquet as pq
from confluent_kafka import Consumer, TopicPartition
from sqlalchemy import create_engine, text

from dataplatform.kafka_config import client_config
from dataplatform.products.product import DataProduct, get_product
from dataplatform.sinks.parquet_files import product_dir
from dataplatform.sinks.sql.tables import table_name
from tests.support.entities import HOUSING, RELEASES
from tests.support.kafka import unique_name
from tests.support.product_topics import TopicReader
from tests.support.sending import ChangeSender


def check_inputs_hold_every_acknowledged_event(bootstrap: str, registry_url: str, config,  # noqa: ANN001
                                               sender: ChangeSender, relayed: set[str]) -> None:
    """Every event the broker acknowledged is in its input topic, and every outbox row."""
    topics = {config.topic(p): get_product(p) for p in (HOUSING, RELEASES)}
    with TopicReader(bootstrap, registry_url, topics) as reader:
        found = {r.event_id for r in reader.read_to_end(120) if r.value}
    missing = {event.event_id for _, event in sender.acked} - found
    assert not missing, f"{len(missing)} acknowledged events missing from the input topics, e.g. {sorted(missing)[:3]}"
    assert relayed and not relayed - found, f"{len(relayed - found)} outbox rows missing from the housing topic"


def sink_at_end(database_url: str, group: str, outputs: dict, bootstrap: str, partitions: int) -> dict | None:
    """The sink's stored next offsets, once they equal every output partition's end offset."""
    probe = Consumer({**client_config(bootstrap), "group.id": unique_name("ends")})
    try:
        ends = {(t, p): probe.get_watermark_offsets(TopicPartition(t, p), timeout=10)[1]
                for t in outputs for p in range(partitions)}
    finally:
        probe.close()
    engine = create_engine(database_url)
    try:
        with engine.connect() as db:
            stored = {(r.topic, r.partition): r.next_offset for r in db.execute(
                text("SELECT topic, partition, next_offset FROM sink_offsets WHERE group_id = :g"), {"g": group})}
    finally:
        engine.dispose()
    wanted = {tp: end for tp, end in ends.items() if end > 0}
    return stored if all(stored.get(tp) == end for tp, end in wanted.items()) else None


def check_tables(database_url: str, outputs: dict, produced: dict) -> None:
    """The SQL tables hold each output key's last event, the current state, and nothing else."""
    figures_topic, warnings_topic = outputs
    engine = create_engine(database_url)
    try:
        with engine.connect() as db:
            figures = {r.area_code: (r.supply, r.demand) for r in db.execute(
                text(f"SELECT area_code, supply, demand FROM {table_name(figures_topic)}"))}
            warnings = {r.area_code: r.severity for r in db.execute(
                text(f"SELECT area_code, severity FROM {table_name(warnings_topic)}"))}
    finally:
        engine.dispose()
    last = {area: events[-1]["after"] for area, events in produced["figures"].items()}
    assert figures == {e["area_code"]: (e["supply"], e["demand"]) for e in last.values()}
    last = {key: events[-1]["after"] for key, events in produced["warnings"].items()}
    assert warnings == {e["area_code"]: e["severity"] for e in last.values()}


def group_at_end(bootstrap: str, group: str, topics: list[str], partitions: int) -> bool:
    """Whether ``group``'s committed offsets are at every partition's end offset."""
    probe = Consumer({**client_config(bootstrap), "group.id": group})
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(partitions)]
        ends = [probe.get_watermark_offsets(tp, timeout=10)[1] for tp in tps]
        committed = probe.committed(tps, timeout=10)
    finally:
        probe.close()
    return all(end == 0 or c.offset == end for c, end in zip(committed, ends))


def check_parquet_holds_each_event_once(path: Path, topics: dict[str, DataProduct], bootstrap: str,
                                        registry_url: str) -> int:
    """The Parquet sink's guarantee (docs/sinks.md): every offset of every partition in
    exactly one file, each event once (an exact repeat, same event id, is skipped within a
    run), tombstones as rows. So its rows are exactly the topics' first occurrences of each
    event id and their tombstones. Returns the number of rows."""
    expected: set[tuple[str, int, int, str | None]] = set()
    seen: set[tuple[str, str]] = set()
    with TopicReader(bootstrap, registry_url, topics) as reader:
        for r in reader.read_to_end(120):
            if r.value is None:
                expected.add((r.topic, r.partition, r.offset, None))
            elif (r.topic, r.event_id) not in seen:
                seen.add((r.topic, r.event_id))
                expected.add((r.topic, r.partition, r.offset, r.event_id))
    fs, root = fsspec.core.url_to_fs(str(path))
    rows: list[tuple[str, int, int, str | None]] = []
    for topic, product in topics.items():
        for file in fs.glob(f"{product_dir(root, product.name)}/date=*/part-*.parquet"):
            t = pq.read_table(file, columns=["_kafka_partition", "_kafka_offset", "_event_id"]).to_pydict()
            rows += [(topic, p, o, e) for p, o, e in zip(t["_kafka_partition"], t["_kafka_offset"], t["_event_id"])]
    twice = [row for row, n in Counter(rows).items() if n > 1]
    assert not twice, f"{len(twice)} Parquet rows written twice, e.g. {twice[:3]}"
    ids = Counter((topic, e) for topic, _, _, e in rows if e is not None)
    assert not [k for k, n in ids.items() if n > 1], "an event id in two Parquet rows"
    missing, extra = expected - set(rows), set(rows) - expected
    assert not missing and not extra, (f"Parquet rows missing: {len(missing)} (e.g. {sorted(missing)[:3]}), "
                                       f"not in the topics: {len(extra)}")
    return len(rows)


def parquet_latest(path: Path, product: DataProduct, key: str, columns: list[str]) -> dict[str, tuple]:
    """Each key's last row (by offset) in the product's Parquet files: its current state."""
    fs, root = fsspec.core.url_to_fs(str(path))
    latest: dict[str, tuple[int, tuple]] = {}
    for file in fs.glob(f"{product_dir(root, product.name)}/date=*/part-*.parquet"):
        t = pq.read_table(file, columns=[key, "_kafka_offset", *columns]).to_pydict()
        for i, k in enumerate(t[key]):
            if k not in latest or t["_kafka_offset"][i] > latest[k][0]:
                latest[k] = (t["_kafka_offset"][i], tuple(t[c][i] for c in columns))
    return {k: row for k, (_, row) in latest.items()}


def follower_holds_each_transition_once(stored: dict[str, list[tuple[str, dict]]], produced: dict) -> str | None:
    """Why the store is not the warnings topic's chains (each event once, in order, with the
    topic's content), or None when it is."""
    for key, events in produced["warnings"].items():
        want = [e["source"]["event_id"] for e in events]
        got = [event_id for event_id, _ in stored.get(events[-1]["after"]["warning_id"], [])]
        if got != want:
            return f"warning {key}: stored {len(got)} transitions, the topic has {len(want)}"
        for (event_id, record), event in zip(stored[events[-1]["after"]["warning_id"]], events):
            if (record["severity"], record["transition"]) != (event["after"]["severity"], event["after"]["transition"]):
                return f"warning {key}: event {event_id} stored with another content"
    extra = set(stored) - {events[-1]["after"]["warning_id"] for events in produced["warnings"].values()}
    return f"warnings stored that the topic does not have: {sorted(extra)[:3]}" if extra else None

