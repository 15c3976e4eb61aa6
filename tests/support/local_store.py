"""A stopped worker's rocksdb:// table stores beside the changelogs they restore from.

A local store must never hold a value its changelog lacks: a worker that later restores
the partition from the changelog alone (a new machine, a lost disk, a partition that moves)
would not have it, and nothing would redo the step that wrote it."""

from __future__ import annotations

import time
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition
from faust.stores.rocksdb import Store as RocksDBStore

from dataplatform.kafka_config import client_config
from dataplatform.stream_processors.config import ProcessorConfig
from tests.support.kafka import unique_name

def local_stores(datadir: str | Path) -> dict[tuple[str, int], dict[bytes, bytes]]:
    """Every table store under ``datadir`` (``<table>-<partition>.db`` folders), as stored:
    raw key -> raw value per (table, partition), without Faust's offset record."""
    from rocksdict import AccessType, Options, Rdict

    stores = {}
    for path in sorted(Path(datadir).rglob("*.db")):
        table, _, partition = path.name.removesuffix(".db").rpartition("-")
        db = Rdict(str(path), Options(raw_mode=True), access_type=AccessType.read_only())
        try:
            stores[(table, int(partition))] = {k: v for k, v in db.items() if k != RocksDBStore.offset_key}
        finally:
            db.close()
    return stores


def changelog_contents(bootstrap: str, topic: str, partition: int, timeout: float = 60.0) -> dict[bytes, bytes]:
    """The latest value of each key in one changelog partition (a key whose latest record is a
    tombstone left out): what a worker restoring the partition from scratch would hold."""
    consumer = Consumer({**client_config(bootstrap), "group.id": unique_name("changelog"), "enable.auto.commit": False})
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        consumer.assign([TopicPartition(topic, partition, low)])
        latest: dict[bytes, bytes | None] = {}
        position, deadline = low, time.monotonic() + timeout
        while position < high:
            assert time.monotonic() < deadline, f"{topic}[{partition}] read to {position} of {high} before the deadline"
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            latest[msg.key()] = msg.value()
            position = msg.offset() + 1
        return {key: value for key, value in latest.items() if value is not None}
    finally:
        consumer.close()


def assert_stores_hold_their_changelogs(bootstrap: str, config: ProcessorConfig, datadir: str | Path) -> int:
    """Each local store under ``datadir`` holds exactly what its changelog would restore;
    returns how many values were compared."""
    stores = local_stores(datadir)
    assert stores, f"no rocksdb:// store under {datadir}"
    compared = 0
    for (table, partition), held in stores.items():
        restored = changelog_contents(bootstrap, config.changelog_topic(table), partition)
        only_local = {k: v for k, v in held.items() if restored.get(k) != v}
        assert not only_local, (f"{table}[{partition}]: {len(only_local)} value(s) in the local store that its "
                                f"changelog does not hold, e.g. {next(iter(only_local.items()))}")
        assert held == restored, f"{table}[{partition}]: the changelog holds values the local store lacks"
        compared += len(held)
    return compared
