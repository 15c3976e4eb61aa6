"""Faust's table machinery, with its end of recovery put in a safe order.

**Seek, then resume.** When a worker has restored its tables (at start, and after every
rebalance), Faust's ``Recovery.on_recovery_completed`` resumes fetching from the stream
partitions *first*, then seeks them to their committed offsets, then resumes flow
control, which empties every stream's queue. Records fetched in between are delivered from
wherever the client stood, bump the consumer's "read offset", and mostly land in queues
that are then emptied; the records fetched again after the seek fall below that read
offset and are dropped as already read, while the consumer marks the range as a gap,
which it later counts as processed. A worker restarted by the crash tests processed offset
48 of a repartition partition without ever seeing 42 and 44 (committed offset 40): the
area stepped from the wrong state and said one event id with two contents after the next
restart, and a commit would have passed the two messages for good.

Here the stream partitions stay paused (as Faust paused them when they were assigned)
until they are seeked and flow control has emptied the queues; only then are they
resumed, so the first record a stream sees is the one at its committed offset. (Faust's
other path, ``_resume_streams``, only runs for an app without tables: never here.)

**Crash point** ``restore`` on each changelog batch a table applies, for the crash tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import faust
from faust.tables import TableManager
from faust.tables.recovery import Recovery

from dataplatform.stream_processors.crash_points import crash_point


class RestoringTable(faust.Table):
    """Faust's table with the ``restore`` crash point on each changelog batch it applies."""

    def apply_changelog_batch(self, batch: Iterable[Any]) -> None:
        crash_point("restore")
        super().apply_changelog_batch(batch)


class SeekFirstRecovery(Recovery):
    """Faust's recovery, resuming the stream partitions only once they are positioned."""

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        """Faust's ``on_recovery_completed`` with the seek moved before the resume."""
        app, consumer = self.app, self.app.consumer
        self.log.info("Restore complete!")
        await app.on_rebalance_complete.send()
        self._set_recovery_ended()
        callbacks = [asyncio.ensure_future(table.on_recovery_completed(self.actives_for_table[table],
                                                                       self.standbys_for_table[table]))
                     for table in self.tables.values()]
        if callbacks:
            await asyncio.wait(callbacks)
        assignment = consumer.assignment()
        if app.consumer_generation_id != generation_id:
            self.log.warning("Recovery rebalancing again app id %s param %s", app.consumer_generation_id,
                             generation_id)
            return
        streams = {tp for tp in assignment if not self._is_changelog_tp(tp)}
        if assignment:
            self.log.info("Seek stream partitions to committed offsets.")
            await self._wait(consumer.perform_seek(), timeout=app.conf.broker_request_timeout)
        self.completed.set()
        app.flow_control.resume()      # empties the streams' queues: nothing from the new positions is in them
        consumer.resume_flow()
        consumer.resume_partitions(streams)
        await app._fetcher.maybe_start()
        self.tables.on_actives_ready()
        if not app.assignor.assigned_standbys():
            self.tables.on_standbys_ready()
        app.on_rebalance_end()
        self.log.info("Worker ready")


class SeekFirstTableManager(TableManager):
    """Faust's table manager with :class:`SeekFirstRecovery` (``faust.App(TableManager=...)``)."""

    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = SeekFirstRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery
