"""Agents that take events in batches and acknowledge a batch only once it is done.

Faust's ``take_events`` acknowledges a batch's events when the loop body exits, however it
exits: a batch that raised would be acknowledged, and its offsets committed, with only
part of its effects written. So a failed batch never returns to it: the worker stops on
the spot (:func:`fail_stop`), acknowledging nothing, and a restarted worker redoes the
batch. A graceful stop (Faust cancels its agents) lets the batch in hand finish first.
Before a batch is handled, :class:`.continuity.Continuity` checks that no record of its
partitions went missing on the way; one did, and the worker stops the same way.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

import faust

from dataplatform.stream_processors.config import ProcessorConfig
from dataplatform.stream_processors.engine.continuity import Continuity
from dataplatform.crash_points import give_back

log = logging.getLogger(__name__)
EXIT_STEP_FAILED = 70
Batch = list[Any]   # faust events


def batch_agent(handle: Callable[[Batch], Awaitable[None]], config: ProcessorConfig,
                continuity: Continuity) -> Callable[[Any], Awaitable[None]]:
    """A Faust agent that hands each batch (``config.batch_size`` events or
    ``config.batch_seconds``) to ``handle``, once ``continuity`` found no record missing."""
    async def agent(stream: faust.Stream) -> None:
        async for events in stream.take_events(config.batch_size, within=config.batch_seconds):
            try:
                missing = continuity.dropped((e.message.tp, e.message.offset) for e in events)
            except Exception as exc:  # noqa: BLE001 - the broker could not say: take_events would ack the batch
                fail_stop(exc)
            if missing:
                fail_stop(RuntimeError(f"a record was dropped before processing: {missing}"))
            task = asyncio.ensure_future(handle(events))
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                await _finish_or_fail(task)
                raise
            except BaseException as exc:  # noqa: BLE001 - nothing of this batch may be committed
                fail_stop(exc)

    agent.__name__ = getattr(handle, "__name__", "batches")
    return agent


async def _finish_or_fail(task: asyncio.Future) -> None:
    """Let a batch finish its writes during a graceful stop; a batch that fails stops the worker."""
    try:
        await task
    except BaseException as exc:  # noqa: BLE001
        fail_stop(exc)


def fail_stop(exc: BaseException) -> None:
    """Stop the worker now, acknowledging nothing: a restarted worker redoes the batch."""
    log.critical("a processing step failed; stopping this worker without committing: %r", exc, exc_info=exc)
    for handler in logging.getLogger().handlers:
        handler.flush()
    give_back()   # a crash test's plan this worker did not reach goes to the next worker
    os._exit(EXIT_STEP_FAILED)
