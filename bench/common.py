"""What every benchmark shares: the services it runs against and the machine it ran on."""

from __future__ import annotations

import contextlib
import os
import platform
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from dataplatform.config import Settings


def machine() -> dict[str, object]:
    """The machine's description, recorded next to every figure."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"nproc": os.cpu_count(), "cpu_model": model, "python": platform.python_version(),
            "platform": platform.platform()}


@contextlib.contextmanager
def platform_services(tmp: Path) -> Iterator[tuple[str, str]]:
    """(bootstrap, registry URL): the environment's, or an embedded broker and registry."""
    from dataplatform.kafka.provider import kafka_bootstrap

    with contextlib.ExitStack() as stack:
        bootstrap = stack.enter_context(kafka_bootstrap(tmp / "kafka", Settings()))
        registry = os.environ.get("SCHEMA_REGISTRY_URL")
        if not registry:
            from dataplatform.web.server import RunningServer

            server = stack.enter_context(RunningServer(settings=Settings(database_url=f"sqlite:///{tmp / 'registry.db'}")))
            registry = server.url
        yield bootstrap, registry


def write_results(path: Path, result: dict, console) -> None:
    """Write a benchmark's JSON next to the others and say where."""
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {path}")


def load_average() -> list[float]:
    """The host's 1, 5 and 15 minute load averages: on a shared host, how busy it was."""
    return [round(x, 2) for x in os.getloadavg()]


class TimedAssignment:
    """Mixed into a sink: records when partitions were assigned, so consumer-group start-up
    is not in a throughput figure."""

    assigned_at: float | None = None

    def _on_assign(self, partitions):  # noqa: ANN001
        starts = super()._on_assign(partitions)
        self.assigned_at = time.perf_counter()
        return starts


def time_sink(sink: TimedAssignment, done: Callable[[], bool], what: str, timeout: float, interval: float) -> float:
    """Seconds from the sink's partition assignment to the first time ``done()`` is true: the
    sink runs on a thread, polled every ``interval`` seconds, and is stopped after (also on
    a timeout, a TimeoutError saying it did not ``what`` in time)."""
    stop = threading.Event()
    thread = threading.Thread(target=sink.run, args=(stop,), daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    try:
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the sink did not {what} in time")
            time.sleep(interval)
        finished = time.perf_counter()
    finally:
        stop.set()
        thread.join(60)
    return finished - sink.assigned_at
