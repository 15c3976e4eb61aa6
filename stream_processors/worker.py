"""Running the processor: one worker in this process, or N workers as child processes.

``run_worker`` blocks until SIGTERM/SIGINT (Faust's worker stops gracefully: commits
offsets, flushes the producer, leaves the group). ``start_workers`` starts N of them as
separate processes (``python -m stream_processors.worker``) and returns a
:class:`WorkerPool` whose ``stop()`` terminates them cleanly, killing only stragglers.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from dataplatform.config import Settings, get_settings
from stream_processors.config import ProcessorConfig
from stream_processors.supply_demand import Clock

CONFIG_ENV = "DATAPLATFORM_PROCESSOR_CONFIG"
log = logging.getLogger(__name__)


def run_worker(settings: Settings | None = None, config: ProcessorConfig | None = None,
               clock: Clock | None = None) -> None:
    """Run one processor worker in this process (main thread) until it is signalled to stop."""
    import faust

    from stream_processors.topology import build_app, ensure_topics, seed_group_offsets

    config = (config or ProcessorConfig()).resolved(settings)
    ensure_topics(config, settings)
    seed_group_offsets(config, settings)
    processor = build_app(config, clock, settings=settings)
    worker = faust.Worker(processor.app, loglevel=config.loglevel, quiet=True, redirect_stdouts=False)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise


@dataclass
class WorkerPool:
    """Worker processes started by :func:`start_workers`."""

    config: ProcessorConfig
    processes: list[subprocess.Popen] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def alive(self) -> list[bool]:
        return [p.poll() is None for p in self.processes]

    def stop(self, timeout: float = 30.0) -> list[int]:
        """SIGTERM every worker, wait for a graceful exit, kill any still running; exit codes."""
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

    def log_tail(self, lines: int = 40) -> str:
        out = []
        for path in self.logs:
            text = path.read_text(errors="replace").splitlines() if path.exists() else []
            out.append(f"--- {path}\n" + "\n".join(text[-lines:]))
        return "\n".join(out)

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_workers(n: int = 1, settings: Settings | None = None, config: ProcessorConfig | None = None,
                  first_index: int = 0) -> WorkerPool:
    """Start ``n`` workers, each its own process, sharing the app id (they split partitions)."""
    from stream_processors.topology import ensure_topics, seed_group_offsets

    config = (config or ProcessorConfig()).resolved(settings)
    ensure_topics(config, settings)  # before returning, so callers can publish to the right partitions
    seed_group_offsets(config, settings)
    pool = WorkerPool(config)
    for i in range(first_index, first_index + n):
        workdir = Path(config.datadir or ".") / f"worker-{i}"
        workdir.mkdir(parents=True, exist_ok=True)
        log_path = workdir / "worker.log"
        env = {**os.environ, **(settings or get_settings()).child_environment(),
               CONFIG_ENV: config.with_(datadir=str(workdir)).to_json()}
        with open(log_path, "ab") as out:
            pool.processes.append(subprocess.Popen([sys.executable, "-m", "stream_processors.worker"],
                                                   env=env, stdout=out, stderr=subprocess.STDOUT,
                                                   preexec_fn=_stop_with_parent,
                                                   # Ctrl-C reaches the owner, which stops workers in order
                                                   start_new_session=True))
        pool.logs.append(log_path)
    return pool


def _stop_with_parent() -> None:
    """Ask Linux to SIGTERM the worker when the process that started it dies (no orphans)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - not Linux: the caller's stop() still works
        pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="One supply/demand processor worker (config from the environment).")
    parser.parse_args(argv)
    text = os.environ.get(CONFIG_ENV)
    config = ProcessorConfig.from_json(text) if text else ProcessorConfig()
    logging.basicConfig(level=config.loglevel, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_worker(config=config)


if __name__ == "__main__":
    main()
