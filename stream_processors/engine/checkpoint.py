"""The step barrier: a step's outputs durable, then the state they came from, then its events acknowledged.

Crash safety rests on that order (docs/stream-processing.md, "Crashes"). A step sends its
outputs (:meth:`Checkpoint.send`) and waits until they are durable (:meth:`Checkpoint.durable`);
only then does it write the state they came from (:meth:`.store.Store.write`) and wait
again; and only once the step has returned are its events acknowledged, so that no offset is
committed past an effect that could still be lost. The acknowledgement is the step's return:
:func:`.batches.batch_agent` acknowledges a batch whose step returned, and stops the worker,
acknowledging nothing, when it raised. A crash between two phases leaves state that the
restarted worker redoes the step from, to the same outputs (the core's steps are pure).

:class:`FaustCheckpoint` is the barrier on Faust: the producer's record batches
(:mod:`.faust_patches.producer`) and its flush, which raises if any send was lost, then each
table's store taking the values whose changelog records are acknowledged
(:mod:`.faust_patches.tables`).
"""

from __future__ import annotations

from typing import Protocol

import faust

from dataplatform.stream_processors.engine.faust_patches.producer import Record
from dataplatform.stream_processors.engine.faust_patches.tables import ProcessorTable


class Checkpoint(Protocol):
    """What a stage's step calls to make its effects durable, in order."""

    async def send(self, topic: str, records: list[Record]) -> None:
        """Queue ``(key, value)`` records to ``topic``, each on the partition its key hashes
        to, in order within a partition. Durable only once :meth:`durable` returns."""

    async def durable(self) -> None:
        """Return once everything sent and every store value written before this call is
        acknowledged by the broker, with the stores holding those values; raise if any
        was lost (the step fails, and its events are never acknowledged)."""


class FaustCheckpoint:
    """The step barrier on a Faust app whose producer and tables are the engine's."""

    def __init__(self, app: faust.App) -> None:
        self.app = app

    async def send(self, topic: str, records: list[Record]) -> None:
        await self.app.producer.send_keyed(topic, records)

    async def durable(self) -> None:
        await durable(self.app)


async def durable(app: faust.App) -> None:
    """Wait until everything this worker has sent or written is acknowledged by the broker
    (raises if anything was lost), then let each table's store take the values written:
    the barrier between a step's outputs and its state, and between its state and the
    acknowledgement of its events."""
    tables = [table for table in app.tables.values() if isinstance(table, ProcessorTable)]
    marks = [table.written for table in tables]   # what was written before this barrier
    await app.producer.flush()
    for table, mark in zip(tables, marks):
        await table.apply_delivered(mark)
