"""Worker processes of the processor: start N, restart the dead, stop them in order.

``start_workers`` starts N workers as separate processes (``python -m
dataplatform.stream_processors.deployment.worker``, see :mod:`.worker`) and returns a
:class:`WorkerPool`: ``restart_dead()`` restarts a worker that died (with backoff, the
others keep working), ``supervise()`` also restarts a group that stalled, ``stop()``
terminates them cleanly, killing only stragglers. Each worker has a stable
static-membership id (app id, host, index), so a restarted worker takes its partitions
back at once. This module does not import Faust: the CLI and ``run`` load it cheaply.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from dataplatform.config import Settings, get_settings
from dataplatform.kafka.process import set_parent_death_signal
from dataplatform.stream_processors.config import CONFIG_ENV, ProcessorConfig
from dataplatform.stream_processors.deployment.progress import LagWatch
from dataplatform.stream_processors.deployment.topic_layout import ensure_topics, seed_group_offsets

log = logging.getLogger(__name__)


BACKOFF_FIRST_S = 1.0
KEEPS_CRASHING = 3        # from this many crashes in a row, a restart report shows the end of the log
STEADY_AFTER_S = 60.0   # a worker that ran this long before dying starts its backoff afresh


@dataclass
class Restart:
    """What :meth:`WorkerPool.restart_dead` did about one dead worker, for the caller to say."""

    index: int
    exit_code: int
    crashes: int          # consecutive crashes of this worker
    delay_s: float        # how long it waited before restarting it
    log: Path
    log_tail: str = ""    # the end of its log, once it keeps crashing

    def describe(self) -> str:
        how = f"was killed by signal {-self.exit_code}" if self.exit_code < 0 else f"exited with code {self.exit_code}"
        again = f" ({self.crashes} crashes in a row)" if self.crashes > 1 else ""
        said = f"processor worker {self.index} {how}{again}; restarted after {self.delay_s:.0f}s (log: {self.log})"
        return f"{said}\n{self.log_tail}" if self.log_tail else said


@dataclass
class WorkerPool:
    """Worker processes started by :func:`start_workers`."""

    config: ProcessorConfig
    settings: Settings | None = None
    backoff_max_s: float = 30.0
    stall_after_s: float = 60.0   # lag and no commit for this long: restart every worker (0: never)
    executable: str = sys.executable   # the Python the workers run with (a benchmark can compare installs)
    processes: list[subprocess.Popen] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    indexes: list[int] = field(default_factory=list)   # each process's worker index
    _started_at: list[float] = field(default_factory=list)
    _crashes: list[int] = field(default_factory=list)
    _dead_since: dict[int, float] = field(default_factory=dict)
    _watch: Any = None   # a progress.LagWatch once supervise() runs

    def alive(self) -> list[bool]:
        return [p.poll() is None for p in self.processes]

    def start(self, index: int) -> None:
        """Start (or restart) worker ``index`` with its own folder, log and membership id."""
        workdir = Path(self.config.datadir or ".") / f"worker-{index}"
        workdir.mkdir(parents=True, exist_ok=True)
        log_path = workdir / "worker.log"
        config = self.config.with_(datadir=str(workdir), instance_id=worker_instance_id(self.config.app_id, index))
        env = {**os.environ, **(self.settings or get_settings()).child_environment(), CONFIG_ENV: config.to_json()}
        with open(log_path, "ab") as out:
            process = subprocess.Popen([self.executable, "-m", "dataplatform.stream_processors.deployment.worker"],
                                       env=env, stdout=out, stderr=subprocess.STDOUT,
                                       preexec_fn=partial(set_parent_death_signal, signal.SIGTERM),  # no orphans
                                       # Ctrl-C reaches the owner, which stops workers in order
                                       start_new_session=True)
        if index in self.indexes:
            at = self.indexes.index(index)
            self.processes[at], self.logs[at], self._started_at[at] = process, log_path, time.monotonic()
        else:
            self.indexes.append(index)
            self.processes.append(process)
            self.logs.append(log_path)
            self._started_at.append(time.monotonic())
            self._crashes.append(0)

    def restart_dead(self) -> list[Restart]:
        """Restart each worker that died, once its backoff (1 s, doubling to 30 s while it
        keeps dying within a minute of starting) has passed; what was restarted."""
        restarts, now = [], time.monotonic()
        for i, process in enumerate(self.processes):
            if process.poll() is None:
                continue
            died = self._dead_since.setdefault(i, now)
            steady = died - self._started_at[i] >= STEADY_AFTER_S
            crashes = 1 if steady else self._crashes[i] + 1
            delay = min(self.backoff_max_s, BACKOFF_FIRST_S * 2 ** (crashes - 1))
            if now - died < delay:
                continue
            self._crashes[i] = crashes
            del self._dead_since[i]
            code, tail = process.returncode, self.log_tail(20, i) if crashes >= KEEPS_CRASHING else ""
            self.start(self.indexes[i])
            restarts.append(Restart(self.indexes[i], code, crashes, delay, self.logs[i], tail))
            log.warning("%s", restarts[-1].describe())
        return restarts

    def supervise(self) -> list[str]:
        """One round of supervision: restart dead workers, and every worker when the
        group has lag and has committed nothing for :attr:`stall_after_s`; what was done."""
        said = [r.describe() for r in self.restart_dead()]
        if self.stall_after_s:
            if self._watch is None:
                self._watch = LagWatch(self.config, self.settings)
            if said or not all(self.alive()):
                self._watch.reset()   # a worker starting (or dead) is not a stall: the clock starts again
            elif self._watch.stalled(self.stall_after_s):
                said.append(f"the processor has lag and committed nothing for {self.stall_after_s:.0f}s; "
                            f"restarting its {len(self.processes)} worker(s)")
                log.warning("%s", said[-1])
                self._terminate()
                for index in self.indexes:
                    self.start(index)
                self._watch.reset()
        return said

    def stop(self, timeout: float = 30.0) -> list[int]:
        """SIGTERM every worker, wait for a graceful exit, kill any still running; exit codes."""
        if self._watch is not None:
            self._watch.close()
            self._watch = None
        return self._terminate(timeout)

    def _terminate(self, timeout: float = 30.0) -> list[int]:
        for p in self.processes:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        codes = []
        for p in self.processes:
            try:
                codes.append(p.wait(max(0.1, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                log.warning("worker %d did not stop within %ss; killing it", p.pid, timeout)
                p.kill()
                codes.append(p.wait(10))
        return codes

    def log_tail(self, lines: int = 40, index: int | None = None) -> str:
        out = []
        for path in self.logs if index is None else [self.logs[index]]:
            text = path.read_text(errors="replace").splitlines() if path.exists() else []
            out.append(f"--- {path}\n" + "\n".join(text[-lines:]))
        return "\n".join(out)

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def worker_instance_id(app_id: str, index: int) -> str:
    """The static group membership id of worker ``index``: stable across restarts on this
    host, different for every worker of the deployment."""
    return f"{app_id}-{socket.gethostname()}-{index}"


def start_workers(n: int = 1, settings: Settings | None = None, config: ProcessorConfig | None = None,
                  first_index: int = 0, executable: str | None = None) -> WorkerPool:
    """Start ``n`` workers, each its own process, sharing the app id (they split partitions)."""
    config = (config or ProcessorConfig()).resolved(settings)
    ensure_topics(config, settings)  # before returning, so callers can publish to the right partitions
    seed_group_offsets(config, settings)
    pool = WorkerPool(config, settings, executable=executable or sys.executable)
    for i in range(first_index, first_index + n):
        pool.start(i)
    return pool
