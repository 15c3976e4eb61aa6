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
* **A worker fenced during its own recovery goes on as a member.** Faust checks, before it
  resumes the streams, that no newer assignment has reached the worker; but a worker whose
  recovery outlasted its session (a table restore waiting for a dead broker, 25 s in the
  broker-fault test) has been dropped from the group without being told: its heartbeats
  had no coordinator to go to. The group moved on, another worker took its partitions, and
  this one resumed them anyway, in the old generation: for the second or two until its
  first commit was refused, both workers sent the same groups' figures, one event id with
  two contents. :func:`membership_lost` asks the coordinator (one heartbeat) before the
  streams are seeked; a worker it no longer knows stops without processing anything
  (:func:`..batches.fail_stop`), and the pool starts it again as a new member.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka.protocol.group import JoinGroupRequest

from dataplatform.stream_processors.engine.batches import fail_stop

log = logging.getLogger(__name__)
UNKNOWN_MEMBER = JoinGroupRequest.UNKNOWN_MEMBER_ID


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
        lost = await self._thread.membership_lost()   # type: ignore[attr-defined]
        if lost:
            fail_stop(RuntimeError(lost))
        await super().perform_seek()   # type: ignore[misc]


async def seek_to_committed(consumer: Any) -> dict:
    """aiokafka's ``seek_to_committed``, seeking a committed offset of 0 too (run in the
    consumer's own thread); the committed offsets."""
    committed = await consumer.seek_to_committed()
    for tp, offset in committed.items():
        if offset == 0:
            consumer.seek(tp, 0)
    return committed


async def membership_lost(consumer: Any, retry_s: float = 0.5) -> str | None:
    """Why this consumer is no longer the member its assignment was given to, or None (run
    in the consumer's own thread). One heartbeat tells: a coordinator that does not know
    the member or its generation answers so, and aiokafka resets both. With no coordinator
    to answer (the cluster is failing over), it asks again until its session timeout has
    passed; still no answer, it lets the worker go on, saying so, as Kafka cannot tell."""
    coordinator = consumer._coordinator
    generation, member = coordinator.generation, coordinator.member_id
    if member == UNKNOWN_MEMBER:
        return "this worker's group membership was reset before its streams resumed; it rejoins as a new member"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + coordinator._session_timeout_ms / 1000
    while True:
        try:
            await asyncio.wait_for(coordinator.ensure_coordinator_known(), max(0.1, deadline - loop.time()))
            answered = await coordinator._do_heartbeat()
        except Exception:  # noqa: BLE001 - a timeout, an error aiokafka does not name: no plain answer
            answered = False
        if coordinator.member_id != member or coordinator.generation != generation:
            return (f"the group coordinator no longer knows this worker as member {member} of generation "
                    f"{generation} (its recovery outlasted its session, and its partitions may be another "
                    "worker's now); stopping before processing anything, to rejoin as a new member")
        if answered:
            return None
        if loop.time() >= deadline:
            log.warning("no group coordinator answered within the session timeout; the streams resume "
                        "without knowing whether this worker is still a member of generation %s", generation)
            return None
        await asyncio.sleep(retry_s)
