"""The processor's tables: Faust's table, written a batch at a time, with a restore crash point.

**Writes by the batch.** Faust sends one changelog record per table assignment through its
whole send path: a ``FutureMessage`` and a ``PendingMessage``, the producer buffer, the
serializer registry, the topic's publish and one aiokafka send, each with its future and
callbacks. The processor writes about three table values per input event (the entity's
state, and its membership of each group it is in), and a profile of one worker at
1,000 events/s put 12% of its CPU in ``Table.__setitem__`` and about as much again in the
buffer's send path. A step knows all its writes at once, so :meth:`ProcessorTable.write`
sends their changelog records as aiokafka record batches
(:meth:`.producer._Producer.send_records`): one future per batch instead of several per
record. The records are the ones Faust would have sent (same topic, partition, key bytes,
value bytes through the table's codec, a tombstone for a deletion), so Faust's recovery
restores them as before, and the step's barrier (:func:`..checkpoint.durable`) waits for
them, and raises if one was lost, exactly as for Faust's own writes.

**The store takes a value once its changelog record is acknowledged** (:func:`..checkpoint.durable`),
not when it is written, as Faust's own ``Table.__setitem__`` does. A ``rocksdb://`` store
outlives a crash, and a value it took before its record reached the broker would be in the
restarted worker's store and in no changelog: the worker would skip the redo of the step
(the state says it is done), its input offsets would be committed, and a worker that later
restores that partition from the changelog would never get the value. With the store
behind the changelog, a store always holds a prefix of its changelog, on either store, and
a crash leaves exactly what a ``memory://`` restore would rebuild. The steps never read a
value back before the barrier: stage 1 keeps a batch's new states aside, stage 2 holds its
groups in memory.

**Reads by key prefix.** :meth:`ProcessorTable.scan` and :meth:`ProcessorTable.prefixes` let
stage 2 read one group's keys (all prefixed ``<group>|``) when it first needs them. A
``rocksdb://`` store keeps its keys in order and seeks to a prefix, so a read costs the keys it
finds, not the table (see :mod:`dataplatform.stream_processors.engine.held_groups` for why that
matters to a restart); the ``memory://`` store has to look at every key.

**Bulk restore first.** When a partition of a ``rocksdb://`` table is assigned, its store
is first brought up to its changelog's end by :mod:`dataplatform.stream_processors.engine.fast_restore`
(large fetches, RocksDB write batches) when it is far behind; Faust's recovery then reads
only what is left.

**Restore crash point** (``restore``) on each changelog batch a table applies, for the crash
tests (:mod:`dataplatform.crash_points`).
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import faust
from faust.serializers import codecs
from faust.stores.rocksdb import Store as RocksDBStore
from faust.streams import _current_event
from faust.types import TP
from rocksdict import WriteBatch

from dataplatform.crash_points import crash_point
from dataplatform.stream_processors.engine.fast_restore import BulkRestore
from dataplatform.stream_processors.engine.faust_patches.producer import Delivery


class ProcessorTable(faust.Table):
    """Faust's table, with :meth:`read` and :meth:`write` for a batch's reads and writes, and
    the ``restore`` crash point: the engine's :class:`..store.Store`."""

    bulk_restore: BulkRestore | None = None   # set by the topology: how to reach the changelogs

    def __post_init__(self) -> None:
        super().__post_init__()
        self.written = 0   # writes numbered in the order they were sent
        self._undelivered: deque[_Write] = deque()

    async def on_rebalance(self, assigned: set[TP], revoked: set[TP], newly_assigned: set[TP],
                           generation_id: int = 0) -> None:
        """Faust's, then a bulk restore of each newly assigned partition of a ``rocksdb://``
        store that is far behind its changelog (in a thread: the event loop keeps the
        group's heartbeats going). Faust's recovery, which runs next, reads what is left."""
        await super().on_rebalance(assigned, revoked, newly_assigned, generation_id)
        if self.bulk_restore is None or not self.seeks:
            return
        topic = self.changelog_topic.get_topic_name()
        loop = asyncio.get_running_loop()
        for tp in sorted(tp for tp in newly_assigned if tp.topic == topic):
            db = self.data._db_for_partition(tp.partition)
            await loop.run_in_executor(None, self.bulk_restore.restore, db, self.data.offset_key, tp.topic,
                                       tp.partition)

    def apply_changelog_batch(self, batch: Iterable[Any]) -> None:
        crash_point("restore")
        super().apply_changelog_batch(batch)

    def read(self, event: faust.types.EventT, key: str) -> Any:
        """The value of ``key`` (None if absent), read as ``event``'s: a ``rocksdb://`` store
        looks in the current event's partition only."""
        with _current(event):
            return self.get(key)

    async def write(self, event: faust.types.EventT, values: Iterable[tuple[str, Any]]) -> None:
        """Send the changelog records of ``values`` (``(key, value)``; a value of None deletes the
        key, if present) in order to the partition of ``event`` (the event the values come from,
        as Faust's own writes do). Awaited, the records are queued; the store takes the values
        once :func:`..checkpoint.durable` has seen them acknowledged (:meth:`apply_delivered`)."""
        key_codec, value_codec = self._codecs()
        with _current(event):   # a rocksdb:// store looks in the current event's partition
            writes = [(key, value) for key, value in values if value is not None or key in self.data]
        if not writes:
            return
        records = [(key_codec.dumps(key), None if value is None else value_codec.dumps(value)) for key, value in writes]
        tp = TP(self.changelog_topic.get_topic_name(), event.message.partition)
        delivery = await self.app.producer.send_records(tp.topic, tp.partition, records)
        self.written += 1
        self._undelivered.append(_Write(self.written, tp, writes, records, delivery))

    async def apply_delivered(self, upto: int) -> None:
        """Wait for the delivery of the writes up to number ``upto``, then apply to the store,
        in order, every write delivered so far (one failed: raise; :func:`..checkpoint.durable`
        has already raised for it, and the store must not take it)."""
        waiting = [fut for write in self._undelivered if write.number <= upto for fut, _ in write.delivery.batches]
        if waiting:
            await asyncio.wait(waiting)
        while self._undelivered and self._undelivered[0].delivery.done():   # no await: one agent at a time
            write = self._undelivered.popleft()
            offset = write.delivery.last_offset()
            if self.seeks:
                self._write_rocksdb(write, offset)
            else:
                store = self.data
                for key, value in write.values:
                    if value is not None:
                        store[key] = value
                    elif key in store:
                        del store[key]

    def _write_rocksdb(self, write: _Write, offset: int) -> None:
        """One atomic RocksDB write of the records' own bytes (what Faust's store keeps: the
        same codecs) and of the changelog offset they reach, as Faust's restore writes a
        changelog batch: the store's values and its offset never disagree."""
        batch = WriteBatch(raw_mode=True)
        for key, value in write.records:
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        batch.put(self.data.offset_key, str(offset).encode())
        self.data._db_for_partition(write.tp.partition).write(batch)

    @property
    def seeks(self) -> bool:
        """Whether the store keeps its keys in order, so that :meth:`scan` costs what it finds."""
        return isinstance(self.data, RocksDBStore)

    def scan(self, prefix: str, event: faust.types.EventT | None = None) -> Iterator[tuple[str, Any]]:
        """Every key that starts with ``prefix``, with its value: on an ordered store, in
        ``event``'s partition only (one seek there, then the keys found), else in every key."""
        if not self.seeks:
            yield from ((key, value) for key, value in self.data.items() if key.startswith(prefix))
            return
        key_codec, value_codec = self._codecs()
        start = _key_prefix(key_codec, prefix)
        db = self.data._db_for_partition(event.message.partition)
        for raw_key, raw_value in db.items(from_key=start):
            if not raw_key.startswith(start):
                return
            yield key_codec.loads(raw_key), value_codec.loads(raw_value)

    def prefixes(self, separator: str = "|") -> set[str]:
        """The distinct parts before ``separator`` of the keys (a key without it counts whole):
        on an ordered store one seek per prefix found, whatever the number of keys under it.
        ``separator`` must be a character JSON does not escape."""
        if not self.seeks:
            return {key.partition(separator)[0] for key in self.data.keys()}
        key_codec, _ = self._codecs()
        quote = _key_prefix(key_codec, "")   # every JSON string key starts with it; Faust's own keys do not
        found: set[str] = set()
        for db in list(self.data._dbs.values()):   # the partitions this worker holds
            start = quote
            while (raw_key := next(iter(db.keys(from_key=start)), None)) is not None and raw_key.startswith(quote):
                prefix, cut, _ = key_codec.loads(raw_key).partition(separator)
                found.add(prefix)
                # next: the first key after every key that starts with prefix + separator
                # (JSON leaves both characters as they are), or after this key if it has none
                start = _key_prefix(key_codec, prefix + chr(ord(separator) + 1)) if cut else raw_key + b"\0"
        return found

    def _codecs(self) -> tuple[codecs.Codec, codecs.Codec]:
        """The key and value codecs the table's changelog (and so its store) uses."""
        topic = self.changelog_topic
        return _codec(topic.key_serializer), _codec(topic.value_serializer)


@dataclass(frozen=True)
class _Write:
    """One :meth:`ProcessorTable.write` whose records are not yet known to be delivered."""

    number: int
    tp: TP
    values: list[tuple[str, Any]]
    records: list[tuple[bytes, bytes | None]]   # the values as sent, through the table's codecs
    delivery: Delivery


def _key_prefix(key_codec: codecs.Codec, prefix: str) -> bytes:
    """The bytes every stored key starting with ``prefix`` starts with: its JSON string without
    the closing quote (JSON escapes a string character by character)."""
    encoded = key_codec.dumps(prefix)
    if not encoded.endswith(b'"'):
        raise TypeError(f"the table's keys must be stored as JSON strings to be read by prefix, not {encoded!r}")
    return encoded[:-1]


@contextlib.contextmanager
def _current(event: faust.types.EventT) -> Iterator[None]:
    """``event`` as the task's current event (Faust's stores and tables take the partition of
    a read or write from it). Only the task-local variable is set: ``Stream.current_event`` is
    what ``take_events``' own buffering reads, and must not be touched (events were processed
    twice and others lost when it was)."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


def _codec(serializer: Any) -> codecs.Codec:
    """The codec a topic's ``key_serializer``/``value_serializer`` names (or is)."""
    return serializer if isinstance(serializer, codecs.Codec) else codecs.get_codec(serializer)
