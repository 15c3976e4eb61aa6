"""Where a worker's streams start after a rebalance: at the committed offsets.

After every assignment (a worker starting, another joining or leaving), Faust restores the
tables, seeks the stream partitions to their committed offsets, and only then should any of
their records reach a stream. Defects of Faust 0.15 and aiokafka 0.12 let records fetched
*before* that seek through, and the crash tests caught them: a worker processed offset 5
of a repartition partition without ever seeing 0 to 4, or offset 246 after a committed 32,
and then committed past what it had skipped (an area lost dozens of contributions; an
event id was said with two contents). Two are fixed here; :mod:`dataplatform.stream_processors.engine.continuity` stops a
worker before it processes past any record that still goes missing.

* **Assignment activates every partition** (``Consumer.on_partitions_assigned``) before the
  app pauses them for recovery, so the fetcher reads stream records in between, from
  wherever the client stands. :class:`HeldStreams` keeps the new assignment inactive
  until recovery resumes it.
* **The end of recovery resumes the streams before seeking them**
  (``Recovery.on_recovery_completed``), then resumes flow control, which empties the
  streams' queues. Records fetched in between move the consumer's read offset on; those
  fetched again after the seek fall below it and are dropped as already read, while the
  skipped range is recorded as a gap that later counts as processed. :class:`HeldStreams`
  stops the flow for the seek: nothing is fetched or delivered until recovery resumes the
  flow, after flow control has emptied the queues. (Moving the seek before the resume
  instead left a restarted worker's input partitions unfetched; cause not found.)
* **A committed offset of 0 is never seeked to** (aiokafka's ``seek_to_committed`` only
  seeks offsets above 0), so a partition whose first records were fetched early stayed
  past them. :func:`seek_to_committed` seeks 0 as well.
"""

from __future__ import annotations

from typing import Any


class HeldStreams:
    """Consumer mixin: partitions just assigned are not fetched until recovery resumes them,
    and nothing is fetched or delivered while they are seeked."""

    _assigning = False

    async def on_partitions_assigned(self, assigned: set, generation_id: int = 0) -> None:
        self._assigning = True
        self._buffered_partitions.difference_update(assigned)   # a stale "buffer full" would resume them
        try:
            await super().on_partitions_assigned(assigned, generation_id)   # type: ignore[misc]
        finally:
            self._assigning = False

    def _set_active_tps(self, tps: set) -> set:
        return super()._set_active_tps(set() if self._assigning else tps)   # type: ignore[misc]

    async def perform_seek(self) -> None:
        # every caller resumes the flow afterwards (recovery, once the queues are emptied)
        self.stop_flow()   # type: ignore[attr-defined]
        await super().perform_seek()   # type: ignore[misc]


async def seek_to_committed(consumer: Any) -> dict:
    """aiokafka's ``seek_to_committed``, seeking a committed offset of 0 too (run in the
    consumer's own thread); the committed offsets."""
    committed = await consumer.seek_to_committed()
    for tp, offset in committed.items():
        if offset == 0:
            consumer.seek(tp, 0)
    return committed
