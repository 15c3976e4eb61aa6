"""The sink's checkpoint inside the table: Kafka offsets in the snapshot summary.

As in the Iceberg Kafka Connect sink, every commit of the sink adds, in the same snapshot
as its data files, the summary property ``dataplatform.offsets.<group>``: JSON
``{"<topic>": {"<partition>": <next offset>}}`` for every partition the group has written
to this table. The data and the offsets are therefore one atomic change of the table; the
table is the only checkpoint, Kafka's committed offsets are for lag display only.

A snapshot without the property (written by another group, a compaction, a schema tool)
carries nothing: the offsets are those of the nearest ancestor of the current snapshot
that has it. Snapshot expiry keeps that ancestor (:mod:`.maintenance`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot, ancestors_of

from dataplatform.sinks.records import TopicPartitionKey

PREFIX = "dataplatform.offsets."
Offsets = dict[TopicPartitionKey, int]


def summary_key(group: str) -> str:
    return f"{PREFIX}{group}"


def encode(offsets: Mapping[TopicPartitionKey, int]) -> str:
    by_topic: dict[str, dict[str, int]] = {}
    for (topic, partition), offset in sorted(offsets.items()):
        by_topic.setdefault(topic, {})[str(partition)] = offset
    return json.dumps(by_topic, separators=(",", ":"), sort_keys=True)


def decode(text: str) -> Offsets:
    return {(topic, int(partition)): int(offset)
            for topic, partitions in json.loads(text).items() for partition, offset in partitions.items()}


def checkpoint_snapshot(table: Table, group: str) -> Snapshot | None:
    """The newest snapshot in the current snapshot's ancestry that carries the group's offsets."""
    key = summary_key(group)
    for snapshot in ancestors_of(table.current_snapshot(), table.metadata):
        if snapshot.summary is not None and snapshot.summary[key] is not None:
            return snapshot
    return None


def stored_offsets(table: Table, group: str) -> Offsets:
    """The group's next offset per partition as the table has it (empty: nothing written yet)."""
    snapshot = checkpoint_snapshot(table, group)
    return decode(snapshot.summary[summary_key(group)]) if snapshot is not None else {}


def advanced(stored: Mapping[TopicPartitionKey, int], batch: Mapping[TopicPartitionKey, int]) -> Offsets:
    """The partitions a batch moves past what the table holds, with their new offsets."""
    return {tp: offset for tp, offset in batch.items() if offset > stored.get(tp, 0)}


def snapshot_properties(group: str, stored: Mapping[TopicPartitionKey, int],
                        moved: Mapping[TopicPartitionKey, int]) -> dict[str, str]:
    """What a commit adds to the summary: every partition's offset, the moved ones updated
    (so the newest snapshot alone is the whole checkpoint, even with several instances)."""
    return {summary_key(group): encode({**stored, **moved})}
