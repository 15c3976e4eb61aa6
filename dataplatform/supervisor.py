"""Keeping the main job's parts alive while it runs, and stopping them without leftovers.

``dataplatform run`` (:mod:`dataplatform.platform`) decides *what* starts and in which
order; this module is *how* the parts that run on their own are kept: each in-process
part (a sink, a simulator, a relay) in a named thread whose crash is logged rather than
taking the job down, and the stream processor's worker processes watched by one thread
that restarts a worker that died or stalled. Stopping joins every thread and ends every
worker process, so no Python or Java process outlives the run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from dataplatform.config import Settings

if TYPE_CHECKING:   # imported when the processor starts: other commands do not load it
    from dataplatform.stream_processors.config import ProcessorConfig
    from dataplatform.stream_processors.deployment.pool import WorkerPool

log = logging.getLogger(__name__)
WATCH_SECONDS = 2.0   # how often the processor's workers are checked


class Supervisor:
    """The threads and child processes of one run; :meth:`stop_watching` before stopping them."""

    def __init__(self, say: Callable[[str], None] = print) -> None:
        self.say = say
        self.stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pools: dict[str, WorkerPool] = {}   # one per derivation

    def spawn(self, name: str, target: Callable[[], None]) -> None:
        """Run ``target`` in a daemon thread named ``name``; an exception out of it is logged."""
        def guarded() -> None:
            try:
                target()
            except Exception:
                log.exception("%s stopped with an error", name)
        thread = threading.Thread(target=guarded, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # -- the stream processor's worker processes -----------------------------------------
    def start_processor(self, workers: int, settings: Settings, config: ProcessorConfig) -> None:
        """Start the workers of one derivation's processor and a thread that keeps them running."""
        from dataplatform.stream_processors.deployment.pool import start_workers

        pool = self._pools[config.derivation] = start_workers(workers, settings, config)
        self.spawn(f"processor-supervisor-{config.derivation}", lambda: self._watch_processor(pool))

    def _watch_processor(self, pool: WorkerPool) -> None:
        """Restart a worker that died, and all workers when they stall (lag and no commit:
        a known Faust failure after a rebalance). Restarting is safe: state comes back from
        the changelogs and a replayed step sends the same events (docs/stream-processing.md)."""
        while not self.stopping.is_set():
            for what in pool.supervise():
                if not self.stopping.is_set():
                    self.say(what)
            self.stopping.wait(WATCH_SECONDS)

    def processor_alive(self) -> bool:
        return all(all(pool.alive()) for pool in self._pools.values())

    # -- stopping ------------------------------------------------------------------------
    def stop_watching(self) -> None:
        """From now on nothing is restarted: the run is stopping."""
        self.stopping.set()

    def join(self, name_suffix: str = "", timeout: float = 60.0) -> None:
        """Wait for the threads whose name ends with ``name_suffix`` (all by default)."""
        for thread in self._threads:
            if thread.name.endswith(name_suffix):
                thread.join(timeout=timeout)

    def stop_processor(self, timeout: float = 45.0) -> None:
        for pool in self._pools.values():
            pool.stop(timeout=timeout)
