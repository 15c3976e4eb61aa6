"""The processor's tables: Faust's table, written a batch at a time, with a restore crash point.

**Writes by the batch.** Faust sends one changelog record per table assignment through its
whole send path: a ``FutureMessage`` and a ``PendingMessage``, the producer buffer, the
serializer registry, the topic's publish and one aiokafka send, each with its future and
callbacks. The processor writes about three table values per input event (the entity's
state, and its membership of each group it is in), and a profile of one worker at
1,000 events/s put 12% of its CPU in ``Table.__setitem__`` and about as much again in the
buffer's send path. A step knows all its writes at once, so :meth:`ProcessorTable.write`
sets them in the store and sends their changelog records as aiokafka record batches
(:meth:`.producer._Producer.send_records`): one future per batch instead of several per
record. The records are the ones Faust would have sent (same topic, partition, key bytes,
value bytes through the table's codec, a tombstone for a deletion), so Faust's recovery
restores them as before, and the step's barrier (:func:`.producer.durable`) waits for
them, and raises if one was lost, exactly as for Faust's own writes.

**Restore crash point** (``restore``) on each changelog batch a table applies, for the crash
tests (:mod:`dataplatform.stream_processors.crash_points`).
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterable, Iterator
from typing import Any

import faust
from faust.serializers import codecs
from faust.streams import _current_event
from faust.types import TP

from dataplatform.stream_processors.crash_points import crash_point


class ProcessorTable(faust.Table):
    """Faust's table, with :meth:`read` and :meth:`write` for a batch's reads and writes, and
    the ``restore`` crash point."""

    def apply_changelog_batch(self, batch: Iterable[Any]) -> None:
        crash_point("restore")
        super().apply_changelog_batch(batch)

    def read(self, event: faust.types.EventT, key: str) -> Any:
        """The value of ``key`` (None if absent), read as ``event``'s: a ``rocksdb://`` store
        looks in the current event's partition only."""
        with _current(event):
            return self.get(key)

    async def write(self, event: faust.types.EventT, values: Iterable[tuple[str, Any]]) -> None:
        """Set each key to its value (None: delete the key, if present) and send the changelog
        records, in order, to the partition of ``event`` (the event the values come from, as
        Faust's own writes do). Awaited, the records are queued; :func:`.producer.durable`
        waits for their delivery, after which the store records the changelog offset it holds
        (a ``rocksdb://`` store restores from there, as after Faust's own writes)."""
        store, topic = self.data, self.changelog_topic
        key_codec, value_codec = _codec(topic.key_serializer), _codec(topic.value_serializer)
        records: list[tuple[bytes, bytes | None]] = []
        with _current(event):   # a rocksdb:// store writes to the current event's partition
            for key, value in values:
                if value is None:
                    if key not in store:
                        continue
                    del store[key]
                    records.append((key_codec.dumps(key), None))
                else:
                    store[key] = value
                    records.append((key_codec.dumps(key), value_codec.dumps(value)))
        if records:
            tp = TP(topic.get_topic_name(), event.message.partition)
            await self.app.producer.send_records(tp.topic, tp.partition, records,
                                                 on_delivered=lambda offset: store.set_persisted_offset(tp, offset))


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
